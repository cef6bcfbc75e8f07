"""A self-contained HTML dashboard of a run's alerts and vitals: one file, no network.

The page opens from a file system, a mail attachment or an archive years later, so it loads
nothing: its CSS and a small vanilla-JavaScript renderer are inline, and the data are embedded
as JSON that the renderer draws as SVG. It shows

(a) alert counts over event time, stacked by severity, in bins of one minute (wider bins when
    the run is long; see :func:`choose_bin_minutes`), all alerts or the emitted ones only;
(b) for the patients with most emitted alerts, the window means of heart rate and SpO2 over
    window start, with a strip of alert markers (filled: emitted, hollow: suppressed) and a
    ``<select>`` to switch patient (``page.html#patient=P000123`` opens on that patient);
(c) a table of alerts by rule (written in HTML by Python, so it shows even without scripts).

When the renderer has drawn everything it sets ``document.body.dataset.rendered = "true"``, and
each chart's ``<svg>`` carries ``data-marks``, the number of marks drawn (bar segments, line
vertices, alert markers): a headless browser's DOM dump then tells whether the charts rendered.

Input frames are the alert and window sinks of a run directory or the Parquet dumps of its
search index (extra columns ignored); they are normalised as for the Hyper extract.

Not for: the paper's figures (paper.figures), a Tableau extract (vitalstream.serving.hyperextract).
"""

from __future__ import annotations

import argparse
import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from vitalstream.core.cliargs import positive_int, writable_file
from vitalstream.serving.hyperextract import (
    add_source_arguments,
    normalise_alerts,
    normalise_windows,
    read_sources,
)

# Candidate bin widths (minutes) of the alert timeline; the smallest giving ≤ MAX_BINS bins.
BIN_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440)
MAX_BINS = 240
# Severity order (stack order, bottom first) and colours; unknown severities come last, grey.
SEVERITY_COLORS = {"high": "#d62728", "medium": "#ff7f0e", "low": "#1f77b4"}
OTHER_COLOR = "#7f7f7f"
# Points per line of the patient chart: more are thinned evenly (the SVG stays light).
MAX_POINTS = 2000
# Alert fields sent as codes into a list of labels (see patient_series).
LABELLED = ("rule", "severity", "column")

CSS = """
:root { --fg: #1d232a; --muted: #5f6b76; --line: #d8dee4; --bg: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 16px 24px 8px; border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 8px; }
.sub { color: var(--muted); margin: 0; }
main { padding: 12px 24px 24px; display: grid; gap: 16px; max-width: 1100px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
          padding: 12px 16px; }
.controls { display: flex; gap: 16px; align-items: center; margin-bottom: 6px;
            color: var(--muted); }
svg { width: 100%; height: auto; display: block; background: var(--bg);
      border: 1px solid var(--line); border-radius: 4px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg .title { font-weight: 600; fill: var(--fg); }
svg .grid { stroke: #eceff2; }
svg .axis { stroke: #9aa5b1; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; color: var(--muted); font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 4px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; background: var(--bg); }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.empty { color: var(--muted); font-style: italic; }
"""

JS = r"""
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var DATA = JSON.parse(document.getElementById("vs-data").textContent);
  var MIN = 60000;
  var TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080];

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function text(parent, x, y, content, attrs) {
    var node = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }
  function clear(svg) { while (svg.firstChild) { svg.removeChild(svg.firstChild); } }
  function color(severity) { return DATA.colors[severity] || DATA.other_color; }
  function pad2(n) { return String(n).padStart(2, "0"); }
  function clock(ms, withDate) {
    var d = new Date(ms);
    var hm = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
    return withDate ? d.toISOString().slice(5, 10) + " " + hm : hm;
  }
  function niceStep(span, target, minStep) {
    var raw = span / Math.max(target, 1);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / power;
    return Math.max((m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * power, minStep || 0);
  }
  function niceDomain(lo, hi) {
    if (!isFinite(lo) || !isFinite(hi)) { return [0, 1]; }
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    var step = niceStep(hi - lo, 4);
    return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
  }
  function yAxis(svg, box, domain, label, minStep) {
    var step = niceStep(domain[1] - domain[0], 4, minStep);
    for (var v = domain[0]; v <= domain[1] + step / 2; v += step) {
      var y = box.y + box.h - (v - domain[0]) / (domain[1] - domain[0]) * box.h;
      el("line", { x1: box.x, x2: box.x + box.w, y1: y, y2: y, class: "grid" }, svg);
      text(svg, box.x - 6, y + 4, String(Math.round(v * 100) / 100), { "text-anchor": "end" });
    }
    text(svg, box.x, box.y - 6, label, { class: "title" });
  }
  function timeAxis(svg, box, t0, t1) {
    var span = Math.max(t1 - t0, MIN);
    var step = TIME_STEPS[TIME_STEPS.length - 1] * MIN;
    for (var i = 0; i < TIME_STEPS.length; i++) {
      if (span / (TIME_STEPS[i] * MIN) <= 8) { step = TIME_STEPS[i] * MIN; break; }
    }
    var withDate = span > 20 * 60 * MIN;
    el("line", { x1: box.x, x2: box.x + box.w, y1: box.y, y2: box.y, class: "axis" }, svg);
    for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      var x = box.x + (t - t0) / (t1 - t0) * box.w;
      el("line", { x1: x, x2: x, y1: box.y, y2: box.y + 4, class: "axis" }, svg);
      text(svg, x, box.y + 16, clock(t, withDate), { "text-anchor": "middle" });
    }
  }

  function drawTimeline() {
    var svg = document.getElementById("chart-timeline");
    var tl = DATA.timeline;
    var emittedOnly = document.getElementById("emitted-only").checked;
    var counts = emittedOnly ? tl.emitted : tl.counts;
    clear(svg);
    var W = 960, H = 300, box = { x: 56, y: 24, w: 880, h: 230 };
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var n = tl.bins, totals = new Array(n).fill(0);
    if (n === 0) {
      text(svg, W / 2, H / 2, "no alerts", { "text-anchor": "middle" });
      svg.dataset.marks = "0";
      return;
    }
    tl.severities.forEach(function (s) {
      counts[s].forEach(function (c, i) { totals[i] += c; });
    });
    var most = Math.max.apply(null, totals.concat([1]));
    var top = Math.ceil(most / niceStep(most, 4, 1)) * niceStep(most, 4, 1);
    yAxis(svg, box, [0, top], emittedOnly ? "emitted alerts per bin" : "alerts per bin", 1);
    var t0 = tl.start_ms, t1 = tl.start_ms + n * tl.bin_ms;
    timeAxis(svg, { x: box.x, y: box.y + box.h, w: box.w }, t0, t1);
    var bw = box.w / Math.max(n, 1), marks = 0, base = new Array(n).fill(0);
    tl.severities.forEach(function (s) {
      counts[s].forEach(function (c, i) {
        if (c <= 0) { return; }
        var h = c / top * box.h, y = box.y + box.h - (base[i] + c) / top * box.h;
        var bar = el("rect", {
          x: box.x + i * bw + 0.5, y: y, width: Math.max(bw - 1, 0.5), height: h,
          fill: color(s), "data-severity": s
        }, svg);
        el("title", {}, bar).textContent =
          clock(t0 + i * tl.bin_ms, true) + " UTC: " + c + " " + s;
        base[i] += c;
        marks += 1;
      });
    });
    if (marks === 0) { text(svg, W / 2, H / 2, "no emitted alerts", { "text-anchor": "middle" }); }
    svg.dataset.marks = String(marks);
  }

  function linePanel(svg, box, times, values, t0, t1, label, stroke) {
    var finite = values.filter(function (v) { return v !== null; });
    var domain = niceDomain(Math.min.apply(null, finite), Math.max.apply(null, finite));
    yAxis(svg, box, domain, label);
    var sx = function (t) { return box.x + (t - t0) / (t1 - t0) * box.w; };
    var sy = function (v) {
      return box.y + box.h - (v - domain[0]) / (domain[1] - domain[0]) * box.h;
    };
    var marks = 0, d = "", open = false;
    for (var i = 0; i < times.length; i++) {
      if (values[i] === null) { open = false; continue; }
      d += (open ? "L" : "M") + sx(times[i]).toFixed(1) + "," + sy(values[i]).toFixed(1);
      open = true;
      marks += 1;
    }
    if (d) {
      el("path", { d: d, fill: "none", stroke: stroke, "stroke-width": 1.5 }, svg);
      if (marks === 1) {
        var j = values.findIndex(function (v) { return v !== null; });
        el("circle", { cx: sx(times[j]), cy: sy(values[j]), r: 2.5, fill: stroke }, svg);
      }
    } else {
      text(svg, box.x + box.w / 2, box.y + box.h / 2, "no windows",
           { "text-anchor": "middle" });
    }
    return marks;
  }

  function decode(p) {
    var m = p.markers, L = DATA.labels, out = [];
    for (var i = 0; i < m.t.length; i++) {
      out.push({
        t: p.base_ms + m.t[i], rule: L.rule[m.rule[i]] || "", column: L.column[m.column[i]] || "",
        severity: L.severity[m.severity[i]] || "", suppressed: m.suppressed[i] === 1,
        value: m.value[i]
      });
    }
    return out;
  }

  function drawPatient() {
    var svg = document.getElementById("chart-patient");
    var select = document.getElementById("patient-select");
    clear(svg);
    var W = 960, H = 440;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var p = DATA.patients[select.selectedIndex];
    if (!p) {
      text(svg, W / 2, H / 2, "no patients", { "text-anchor": "middle" });
      svg.dataset.marks = "0";
      return;
    }
    var times = p.windows.t.map(function (t) { return p.base_ms + t; });
    var markers = decode(p);
    var t0 = Infinity, t1 = -Infinity;
    times.concat(markers.map(function (m) { return m.t; })).forEach(function (t) {
      t0 = Math.min(t0, t); t1 = Math.max(t1, t);
    });
    if (t1 - t0 < MIN) { t0 -= MIN; t1 += MIN; }
    var hr = { x: 56, y: 24, w: 880, h: 140 }, spo2 = { x: 56, y: 200, w: 880, h: 120 };
    var strip = { x: 56, y: 348, w: 880, h: 40 };
    var marks = linePanel(svg, hr, times, p.windows.hr, t0, t1, "heart rate (bpm, window mean)",
                          "#c2185b");
    marks += linePanel(svg, spo2, times, p.windows.spo2, t0, t1, "SpO2 (%, window mean)",
                       "#1565c0");
    text(svg, strip.x, strip.y - 6, "alerts: emitted (top row, filled), suppressed (hollow)",
         { class: "title" });
    el("rect", { x: strip.x, y: strip.y, width: strip.w, height: strip.h, fill: "#fafbfc",
                 stroke: "#eceff2" }, svg);
    markers.forEach(function (m) {
      var x = strip.x + (m.t - t0) / (t1 - t0) * strip.w;
      if (!m.suppressed) {
        el("line", { x1: x, x2: x, y1: hr.y, y2: spo2.y + spo2.h, stroke: color(m.severity),
                     "stroke-opacity": 0.3, "stroke-dasharray": "3,3" }, svg);
      }
      var dot = el("circle", {
        cx: x, cy: strip.y + (m.suppressed ? 0.75 : 0.25) * strip.h, r: 4.5,
        "stroke-width": 1.5, stroke: color(m.severity),
        fill: m.suppressed ? "#ffffff" : color(m.severity), "data-severity": m.severity
      }, svg);
      el("title", {}, dot).textContent = clock(m.t, true) + " UTC " + m.rule + " (" +
        m.severity + (m.suppressed ? ", suppressed" : "") + ")" +
        (m.value === null ? "" : ": " + m.column + " = " + m.value);
      marks += 1;
    });
    timeAxis(svg, { x: strip.x, y: strip.y + strip.h + 6, w: strip.w }, t0, t1);
    svg.dataset.marks = String(marks);
  }

  try {
    document.getElementById("emitted-only").addEventListener("change", drawTimeline);
    var select = document.getElementById("patient-select");
    select.addEventListener("change", drawPatient);
    var wanted = /^#patient=(.+)$/.exec(window.location.hash);
    if (wanted) { select.value = decodeURIComponent(wanted[1]); }
    if (select.selectedIndex < 0) { select.selectedIndex = 0; }
    drawTimeline();
    drawPatient();
    document.body.dataset.rendered = "true";
  } catch (err) {
    document.body.dataset.error = String(err && err.stack || err);
    throw err;
  }
})();
"""


def choose_bin_minutes(span: pd.Timedelta) -> int:
    """The narrowest bin of :data:`BIN_MINUTES` that keeps the timeline at ≤ MAX_BINS bins."""
    minutes = max(span / pd.Timedelta(minutes=1), 0.0)
    for width in BIN_MINUTES:
        if math.ceil(minutes / width) + 1 <= MAX_BINS:
            return width
    return BIN_MINUTES[-1]


def _ms(values: pd.Series) -> list[int]:
    """UTC timestamps as epoch milliseconds (what JavaScript's Date takes), whatever the unit."""
    delta = (values - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return [int(v) for v in delta]


def _num(value: float, digits: int = 2) -> float | None:
    """A JSON-safe number: NaN becomes null (JSON has no NaN)."""
    return None if pd.isna(value) else round(float(value), digits)


def _severities(alerts: pd.DataFrame) -> list[str]:
    known = [s for s in SEVERITY_COLORS if s in set(alerts["severity"])]
    return known + sorted(set(alerts["severity"]) - set(SEVERITY_COLORS))


def timeline(alerts: pd.DataFrame, bin_minutes: int | None = None) -> dict[str, Any]:
    """Alert counts per time bin and severity (all and emitted), bins aligned to the minute."""
    if alerts.empty:
        return {
            "start_ms": 0,
            "bin_ms": 60_000,
            "bin_minutes": 1,
            "bins": 0,
            "severities": [],
            "counts": {},
            "emitted": {},
        }
    start = alerts["time"].min().floor("min")
    width = bin_minutes or choose_bin_minutes(alerts["time"].max() - start)
    index = ((alerts["time"] - start) // pd.Timedelta(minutes=width)).astype("int64")
    bins = int(index.max()) + 1
    severities = _severities(alerts)

    def per_bin(mask: pd.Series) -> dict[str, list[int]]:
        table = pd.crosstab(index[mask], alerts["severity"][mask])
        table = table.reindex(index=range(bins), columns=severities, fill_value=0)
        return {s: [int(c) for c in table[s]] for s in severities}

    return {
        "start_ms": _ms(pd.Series([start]))[0],
        "bin_ms": width * 60_000,
        "bin_minutes": width,
        "bins": bins,
        "severities": severities,
        "counts": per_bin(pd.Series(True, index=alerts.index)),
        "emitted": per_bin(~alerts["suppressed"]),
    }


def top_patients(alerts: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` patients with most emitted alerts (ties: more alerts, then patient id)."""
    if alerts.empty or n <= 0:
        return []
    ranked = (
        alerts.assign(emitted=~alerts["suppressed"])
        .groupby("patient_id")
        .agg(emitted=("emitted", "sum"), alerts=("alert_id", "size"))
        .reset_index()
        .sort_values(["emitted", "alerts", "patient_id"], ascending=[False, False, True])
    )
    return list(ranked["patient_id"].head(n))


def _thin(frame: pd.DataFrame, limit: int = MAX_POINTS) -> pd.DataFrame:
    """At most ``limit`` rows, evenly spaced (keeps the first and the last)."""
    if len(frame) <= limit:
        return frame
    positions = sorted({round(i * (len(frame) - 1) / (limit - 1)) for i in range(limit)})
    return frame.iloc[positions]


def _codes(values: pd.Series, labels: list[str]) -> list[int]:
    """Positions of ``values`` in ``labels`` (-1 for a missing value): the page stays small."""
    index = {label: i for i, label in enumerate(labels)}
    return [-1 if pd.isna(v) else index[v] for v in values]


def labels(alerts: pd.DataFrame) -> dict[str, list[str]]:
    """The distinct rules, severities and vital columns that marker codes refer to."""
    return {name: sorted(set(alerts[name].dropna())) for name in LABELLED}


def patient_series(
    alerts: pd.DataFrame, windows: pd.DataFrame, patient: str, names: dict[str, list[str]]
) -> dict[str, Any]:
    """One patient's HR/SpO2 window means and alert markers, for the patient chart.

    Columns, not rows: a patient can have thousands of (mostly suppressed) alerts, and one JSON
    object per alert made the page ten times larger. Times are milliseconds after ``base_ms``;
    rule, severity and vital column are positions in ``names`` (:func:`labels`).
    """
    w = _thin(windows[windows["patient_id"] == patient].sort_values("window_start"))
    a = alerts[alerts["patient_id"] == patient].sort_values(["time", "alert_id"])
    base = min(pd.concat([w["window_start"], a["time"]]))
    base_ms = _ms(pd.Series([base]))[0]
    return {
        "id": patient,
        "alerts": len(a),
        "emitted": int((~a["suppressed"]).sum()),
        "base_ms": base_ms,
        "windows": {
            "t": [t - base_ms for t in _ms(w["window_start"])],
            "hr": [_num(v, 1) for v in w["hr_mean"]],
            "spo2": [_num(v, 1) for v in w["spo2_mean"]],
        },
        "markers": {
            "t": [t - base_ms for t in _ms(a["time"])],
            **{name: _codes(a[name], names[name]) for name in LABELLED},
            "suppressed": [int(v) for v in a["suppressed"]],
            "value": [_num(v) for v in a["value"]],
        },
    }


def rule_summary(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts by rule: severity, count, emitted, suppressed, distinct patients."""
    columns = ["rule", "severity", "alerts", "emitted", "suppressed", "patients"]
    if alerts.empty:
        return pd.DataFrame(columns=columns)
    table = (
        alerts.assign(emitted=~alerts["suppressed"])
        .groupby("rule")
        .agg(
            severity=("severity", lambda s: "/".join(sorted(set(s)))),
            alerts=("alert_id", "size"),
            emitted=("emitted", "sum"),
            patients=("patient_id", "nunique"),
        )
        .reset_index()
    )
    table["emitted"] = table["emitted"].astype("int64")
    table["suppressed"] = table["alerts"] - table["emitted"]
    return table.sort_values(["alerts", "rule"], ascending=[False, True])[columns]


def _summary_html(table: pd.DataFrame) -> str:
    if table.empty:
        return '<p class="empty">no alerts</p>'
    numeric = ("alerts", "emitted", "suppressed", "patients")
    head = "".join(
        f"<th{' class=n' if c in numeric else ''}>{html.escape(c)}</th>" for c in table.columns
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if c in numeric else ''}>{html.escape(str(v))}</td>"
            for c, v in zip(table.columns, row, strict=True)
        )
        + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f'<table id="rule-summary"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _embed(data: dict[str, Any]) -> str:
    """JSON safe inside <script>: no ``</`` can close the element early."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _page(title: str, subtitle: str, data: dict[str, Any], table_html: str) -> str:
    legend = "".join(
        f'<span><span class="swatch" style="background:{SEVERITY_COLORS.get(s, OTHER_COLOR)}">'
        f"</span>{html.escape(s)}</span>"
        for s in data["timeline"]["severities"]
    )
    options = "".join(
        f'<option value="{html.escape(p["id"])}">{html.escape(p["id"])}: {p["emitted"]} emitted'
        f" / {p['alerts']} alerts</option>"
        for p in data["patients"]
    )
    width = data["timeline"]["bin_minutes"]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{html.escape(title)}</h1><p class="sub">{html.escape(subtitle)}</p></header>
<main>
<section id="timeline">
<h2>Alerts over event time ({width}-minute bins, UTC)</h2>
<div class="controls"><label><input type="checkbox" id="emitted-only"> emitted only</label>
<div class="legend">{legend}</div></div>
<svg id="chart-timeline" role="img" aria-label="alerts per time bin by severity"
 viewBox="0 0 960 300" data-marks="0"></svg>
</section>
<section id="patients">
<h2>Patients with most emitted alerts</h2>
<div class="controls"><label for="patient-select">patient</label>
<select id="patient-select">{options}</select></div>
<svg id="chart-patient" role="img" aria-label="heart rate and SpO2 of one patient"
 viewBox="0 0 960 440" data-marks="0"></svg>
</section>
<section id="rules">
<h2>Alerts by rule</h2>
{table_html}
</section>
</main>
<script type="application/json" id="vs-data">{_embed(data)}</script>
<script>{JS}</script>
</body>
</html>
"""


def write_dashboard(
    alerts: pd.DataFrame,
    windows: pd.DataFrame,
    path: Path,
    *,
    title: str,
    patients: int = 6,
    bin_minutes: int | None = None,
) -> dict[str, Any]:
    """Write the dashboard to ``path``; return what it shows (counts, patients, bin width)."""
    a, w = normalise_alerts(alerts), normalise_windows(windows)
    chosen = top_patients(a, patients)
    names = labels(a)
    data = {
        "colors": SEVERITY_COLORS,
        "other_color": OTHER_COLOR,
        "labels": names,
        "timeline": timeline(a, bin_minutes),
        "patients": [patient_series(a, w, p, names) for p in chosen],
    }
    emitted = int((~a["suppressed"]).sum())
    times = pd.concat([a["time"], w["window_start"]])
    span = f"{times.min():%Y-%m-%d %H:%M} to {times.max():%Y-%m-%d %H:%M} UTC" if len(times) else ""
    subtitle = (
        f"{len(a)} alerts ({emitted} emitted) for {a['patient_id'].nunique()} patients; "
        f"{len(w)} windows of {w['patient_id'].nunique()} patients; {span}"
    ).rstrip("; ")
    page = _page(title, subtitle, data, _summary_html(rule_summary(a)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return {
        "out": str(path),
        "bytes": len(page.encode("utf-8")),
        "alerts": len(a),
        "emitted": emitted,
        "windows": len(w),
        "patients": chosen,
        "bin_minutes": data["timeline"]["bin_minutes"],
        "bins": data["timeline"]["bins"],
    }


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="write a self-contained HTML dashboard of a run's alerts and vitals"
    )
    add_source_arguments(parser)
    parser.add_argument("--out", type=writable_file, required=True, help="the .html file to write")
    parser.add_argument("--title", default="VitalStream run dashboard")
    parser.add_argument("--patients", type=positive_int, default=6, help="patients in the selector")
    parser.add_argument(
        "--bin-minutes", type=positive_int, help="timeline bin width (default: auto)"
    )
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    alerts, windows, _ = read_sources(args, "dashboard")
    summary = write_dashboard(
        alerts,
        windows,
        args.out,
        title=args.title,
        patients=args.patients,
        bin_minutes=args.bin_minutes,
    )
    print(json.dumps(summary))
    return 0
