// VitalStream live dashboard: plain JavaScript, no build step, nothing loaded from elsewhere.
// It reads /api/snapshot once, then long-polls /api/changes?since=SEQ (see
// vitalstream.serving.livepage for why a long poll and not Server-Sent Events) and redraws.
// Tests read the body's data attributes after a headless --dump-dom.
"use strict";
(function () {
  const MAX_ALERTS = 500;   // as many as the server keeps (vitalstream.serving.livestate)
  const PAGE_TILES = 120;   // tiles drawn at a time; "show more" adds as many again
  const RETRY_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  const VITALS = [["hr", "HR"], ["spo2", "SpO2"], ["sbp", "SBP"], ["rr", "RR"], ["temp", "T"]];
  const HEALTH = [
    ["readings_per_s", "readings/s"], ["lag", "lag"], ["batch_ms", "micro-batch ms"],
    ["deadletter_per_s", "dead letters/s"], ["deadletter_total", "dead letters"],
    ["alerts_total", "alerts"], ["job_restarts", "job restarts"],
  ];
  const WEBHOOK = [
    ["delivered", "webhook delivered"], ["pending", "webhook pending"],
    ["failed_attempts", "webhook failed attempts"], ["p99_ms", "webhook P99 ms"],
  ];

  const model = {
    seq: 0, alerts: new Map(), tiles: new Map(), health: null, gapMs: 200,
    shown: PAGE_TILES, updates: 0, filter: "", fresh: new Set(), spark: null,
  };
  const $ = (id) => document.getElementById(id);
  // ?wait=S&gap=MS: a shorter hold and a longer gap between change requests (what a headless
  // capture uses, see vitalstream.serving.livepage); the server's own otherwise.
  const params = new URLSearchParams(window.location.search);
  const askWait = params.has("wait") ? "&wait=" + encodeURIComponent(params.get("wait")) : "";
  const askGap = params.has("gap") ? Number(params.get("gap")) : null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en");
    const size = Math.abs(value);
    return value.toFixed(size >= 10000 ? 0 : size >= 10 ? 1 : 2);
  }

  async function getJSON(path) {
    const resp = await fetch(path, { cache: "no-store" });
    if (!resp.ok) throw new Error(path + ": HTTP " + resp.status);
    return resp.json();
  }

  // ------------------------------------------------------------------ model

  function apply(answer, live) {
    if (answer.reset) {
      model.alerts.clear();
      model.tiles.clear();
    }
    model.fresh.clear();
    for (const alert of answer.alerts) {
      if (model.alerts.has(alert.alert_id)) continue;
      alert._t = Date.parse(alert.time) || 0;
      model.alerts.set(alert.alert_id, alert);
      if (live) model.fresh.add(alert.alert_id);
    }
    if (model.alerts.size > MAX_ALERTS) {
      const keep = sortedAlerts().slice(0, MAX_ALERTS);
      model.alerts = new Map(keep.map((a) => [a.alert_id, a]));
    }
    for (const tile of answer.tiles) model.tiles.set(tile.p, tile);
    if (answer.health) model.health = answer.health;
    model.spark = answer.spark;
    model.seq = answer.seq;
    model.updates += 1;
    render(answer.alerts.length > 0 || answer.reset, answer.tiles.length > 0 || answer.reset);
  }

  function sortedAlerts() {
    return Array.from(model.alerts.values()).sort((a, b) => (b._t - a._t) || (b.seq - a.seq));
  }

  // ------------------------------------------------------------------ drawing

  function render(alertsChanged, tilesChanged) {
    if (alertsChanged) renderAlerts();
    if (tilesChanged) renderTiles();
    renderHealth();
    const body = document.body.dataset;
    body.seq = String(model.seq);
    body.updates = String(model.updates);
    $("clock").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
  }

  function firedBy(alert) {
    const parts = [];
    if (alert.column) parts.push(alert.column);
    parts.push(fmt(alert.value));
    if (alert.threshold !== undefined && alert.threshold !== null) {
      parts.push("(threshold " + fmt(alert.threshold) + ")");
    }
    if (alert.kind) parts.push("· " + alert.kind);
    return parts.join(" ");
  }

  function renderAlerts() {
    const rows = document.createDocumentFragment();
    const alerts = sortedAlerts();
    for (const alert of alerts) {
      const row = el("tr", model.fresh.has(alert.alert_id) ? "new" : "");
      row.dataset.alertId = alert.alert_id;
      row.dataset.severity = alert.severity || "";
      const when = el("td", "", String(alert.time || "").slice(11, 19));
      when.title = alert.time || "";
      row.appendChild(when);
      const sev = el("td");
      const known = ["high", "medium", "low"].includes(alert.severity);
      sev.appendChild(el("span", "sev sev-" + (known ? alert.severity : "other"), alert.severity));
      row.appendChild(sev);
      row.appendChild(el("td", "", alert.rule));
      row.appendChild(el("td", "", alert.patient_id));
      row.appendChild(el("td", "", firedBy(alert)));
      rows.appendChild(row);
    }
    $("alert-rows").replaceChildren(rows);
    $("no-alerts").hidden = alerts.length > 0;
    $("alert-count").textContent = alerts.length ? "(" + alerts.length + ", newest first)" : "";
    document.body.dataset.alerts = String(alerts.length);
  }

  function matches(tile, filter) {
    if (!filter) return true;
    const score = /^news2\s*>=\s*(\d+)$/i.exec(filter);
    if (score) return tile.news2 !== null && tile.news2 >= Number(score[1]);
    return tile.p.toLowerCase().includes(filter.toLowerCase());
  }

  function byNews2(a, b) {
    const na = a.news2 === null ? -1 : a.news2;
    const nb = b.news2 === null ? -1 : b.news2;
    return (nb - na) || (a.p < b.p ? -1 : a.p > b.p ? 1 : 0);
  }

  function renderTiles() {
    const filter = model.filter.trim();
    const all = Array.from(model.tiles.values()).filter((t) => matches(t, filter)).sort(byNews2);
    const shown = all.slice(0, model.shown);
    const tiles = document.createDocumentFragment();
    for (const tile of shown) tiles.appendChild(drawTile(tile));
    $("tiles").replaceChildren(tiles);
    $("more").hidden = all.length <= shown.length;
    $("more").textContent = "show more (" + (all.length - shown.length) + " left)";
    $("tile-count").textContent = "(" + shown.length + " of " + all.length +
      (filter ? " matching, " + model.tiles.size + " in all" : "") + ", worst NEWS2 first)";
    document.body.dataset.tiles = String(shown.length);
    document.body.dataset.patients = String(model.tiles.size);
    document.body.dataset.matching = String(all.length);
  }

  function drawTile(tile) {
    const news2 = tile.news2;
    const level = news2 === null ? "" : news2 >= 7 ? " n-high" : news2 >= 5 ? " n-mid" : "";
    const box = el("div", "tile" + level);
    box.dataset.patient = tile.p;
    box.dataset.news2 = news2 === null ? "" : String(news2);
    const top = el("div", "top");
    top.appendChild(el("span", "", tile.p));
    top.appendChild(el("span", "news2", "NEWS2 " + fmt(news2)));
    box.appendChild(top);
    const vitals = VITALS.filter(([k]) => tile.v[k] !== undefined)
      .map(([k, label]) => label + " " + fmt(tile.v[k]));
    box.appendChild(el("div", "vitals", vitals.join("  ")));
    box.appendChild(sparkline(tile.s));
    return box;
  }

  // A sparkline string: one character a minute bucket, its index in the alphabet the level
  // (vitalstream.serving.livestate.spark_code); the legend comes with every answer.
  function polyline(codes, cls) {
    const legend = model.spark;
    const top = legend.alphabet.length - 1;
    const points = [];
    for (let i = 0; i < codes.length; i++) {
      const level = legend.alphabet.indexOf(codes[i]);
      if (level < 0) continue;
      const x = (100 * i) / Math.max(1, codes.length - 1);
      const y = 29 - (28 * level) / top;
      points.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", cls);
    line.setAttribute("points", points.join(" "));
    return [line, points.length];
  }

  function sparkline(series) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 100 30");
    svg.setAttribute("preserveAspectRatio", "none");
    const [hr, nHr] = polyline(series.hr, "hr");
    const [n2, nN2] = polyline(series.news2, "n2");
    svg.appendChild(hr);
    svg.appendChild(n2);
    svg.dataset.points = String(Math.max(nHr, nN2));
    const title = document.createElementNS(SVG, "title");
    const scales = model.spark.scales;
    title.textContent = "the hour before the last window: NEWS2 (red, " + scales.news2.join("–") +
      "), heart rate (blue, " + scales.hr.join("–") + " /min)";
    svg.appendChild(title);
    return svg;
  }

  function renderHealth() {
    const health = model.health;
    if (!health) return;
    const list = document.createDocumentFragment();
    let fields = 0;
    const add = (key, label, value) => {
      const pair = el("div");
      pair.dataset.key = key;
      pair.appendChild(el("dt", "", label));
      pair.appendChild(el("dd", "", fmt(value)));
      list.appendChild(pair);
      fields += 1;
    };
    const known = new Set(["webhook"]);
    for (const [key, label] of HEALTH) {
      known.add(key);
      if (health[key] !== undefined) add(key, label, health[key]);
    }
    const hook = health.webhook || {};
    for (const [key, label] of WEBHOOK) {
      if (hook[key] !== undefined) add("webhook." + key, label, hook[key]);
    }
    for (const [key, value] of Object.entries(health)) {
      if (!known.has(key) && typeof value !== "object") add(key, key.replace(/_/g, " "), value);
    }
    $("health").replaceChildren(list);
    $("health").dataset.fields = String(fields);
  }

  // ------------------------------------------------------------------ channel

  function setLink(state, detail) {
    const link = $("link");
    link.dataset.state = state;
    link.textContent = state === "live" ? "● live" : "○ reconnecting…";
    link.title = detail ? String(detail) : "";
  }

  async function follow() {
    try {
      const answer = await getJSON("api/changes?since=" + model.seq + askWait);
      setLink("live");
      apply(answer, true);
      setTimeout(follow, model.gapMs);
    } catch (err) {
      setLink("retrying", err);
      setTimeout(follow, RETRY_MS);
    }
  }

  async function start() {
    try {
      const snapshot = await getJSON("api/snapshot");
      model.gapMs = askGap !== null && askGap >= 0 ? askGap : snapshot.page.poll_gap_ms;
      $("title").textContent = snapshot.page.title;
      document.title = snapshot.page.title;
      apply(snapshot, false);
      renderAlerts();
      renderTiles();
      setLink("live");
      document.body.dataset.rendered = "true";
      setTimeout(follow, model.gapMs);
    } catch (err) {
      setLink("retrying", err);
      document.body.dataset.error = String(err);
      setTimeout(start, RETRY_MS);
    }
  }

  // page.html#filter=news2>=5 opens filtered (a link to share, and what the tests use).
  const hash = /^#filter=(.*)$/.exec(window.location.hash);
  if (hash) {
    model.filter = decodeURIComponent(hash[1]);
    $("filter").value = model.filter;
  }
  $("filter").addEventListener("input", (event) => {
    model.filter = event.target.value;
    model.shown = PAGE_TILES;
    renderTiles();
  });
  $("more").addEventListener("click", () => {
    model.shown += PAGE_TILES;
    renderTiles();
  });
  start();
})();
