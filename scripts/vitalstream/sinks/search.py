"""Alerts in a search index: the REST client side of OpenSearch and Elasticsearch 8.

The blueprint sends alerts to Elasticsearch for real-time queries and dashboards. This module
talks to any server with that REST API (the local OpenSearch node of services.searchnode,
or a user's Elasticsearch 8 or OpenSearch named by ``search.url``) through the standard
library only, so the Spark driver needs no client package:

* :func:`setup` applies the index templates (field types, date fields) and the ingest pipeline
  that stamps every document with the time the index received it (``indexed_at``);
* the job's third sink (:class:`vitalstream.sinks.indexer.Indexer`) bulk-indexes each
  micro-batch's alerts and windows with :func:`bulk_index` before the batch completes;
* document ids are deterministic (``<run>:<alert_id>``, ``<run>:<patient>:<window start>``) and
  written with ``create``: the first write of an id wins. A micro-batch replayed after a restart
  finds its documents there instead of duplicating them. Such collisions are counted
  (``duplicates``), not errors; a rerun of a run first removes the run's documents;
* :func:`export` reads a run's documents back and :func:`compare_alerts` checks that the index
  holds exactly the alert set of the Parquet sink (``python -m vitalstream search-export``).

Not for: starting a server (services.searchnode) or drawing dashboards (vitalstream.serving.kibana,
vitalstream.serving.dashboard).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# SearchSink: re-exported, where a run's documents go (runners name it through this module).
from vitalstream.core.settings import SearchSink as SearchSink
from vitalstream.core.settings import index_name

PIPELINE = "vitalstream-indexed-at"
ALERTS = "alerts"
WINDOWS = "windows"
# A bulk request's body is capped well below the servers' 100 MB default.
BULK_BYTES = 4_000_000
SCROLL_SIZE = 5000

_DATE = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
_KEYWORD = {"type": "keyword"}
_DOUBLE = {"type": "double"}

# One mapping per document kind. ``dynamic: strict``: a field the template does not declare is
# refused (and counted as an indexing error) instead of being guessed, so a dashboard can rely
# on every field it names.
ALERT_FIELDS: dict[str, dict[str, str]] = {
    "run": _KEYWORD,
    "alert_id": _KEYWORD,
    "patient_id": _KEYWORD,
    "kind": _KEYWORD,
    "rule": _KEYWORD,
    "severity": _KEYWORD,
    "column": _KEYWORD,
    "value": _DOUBLE,
    "threshold": _DOUBLE,
    "time": _DATE,
    "window_start": _DATE,
    "window_end": _DATE,
    "last_event_time": _DATE,
    "last_send_wall_ns": {"type": "long"},
    "suppressed": {"type": "boolean"},
    "query": _KEYWORD,
    "batch_id": {"type": "long"},
    "indexed_at": _DATE,
}
WINDOW_VITALS = ("hr", "spo2", "sbp", "dbp", "map", "rr", "temp")
WINDOW_FIELDS: dict[str, dict[str, str]] = {
    "run": _KEYWORD,
    "patient_id": _KEYWORD,
    "window_start": _DATE,
    "window_end": _DATE,
    "n": {"type": "integer"},
    **{f"{v}_mean": _DOUBLE for v in WINDOW_VITALS},
    **{f"{v}_min": _DOUBLE for v in WINDOW_VITALS},
    **{f"{v}_max": _DOUBLE for v in WINDOW_VITALS},
    "news2_total": {"type": "integer"},
    "qsofa": {"type": "integer"},
    "sirs": {"type": "integer"},
    "mews_total": {"type": "integer"},
    "risk_logit": _DOUBLE,
    "query": _KEYWORD,
    "batch_id": {"type": "long"},
    "indexed_at": _DATE,
}
FIELDS = {ALERTS: ALERT_FIELDS, WINDOWS: WINDOW_FIELDS}
# The field each kind's dashboards put on the time axis.
TIME_FIELD = {ALERTS: "time", WINDOWS: "window_start"}


class SearchError(RuntimeError):
    """The search server refused a request or could not be reached."""


def index_template(prefix: str, kind: str, refresh_interval: str = "1s") -> dict[str, Any]:
    """The composable index template of one document kind (Elasticsearch 8 and OpenSearch).

    ``refresh_interval``: how soon an indexed document is searchable; a batch whose alerts must
    be searchable before it completes waits up to this long (the live monitor shortens it)."""
    return {
        "index_patterns": [f"{index_name(prefix, kind)}*"],
        "priority": 200,
        "template": {
            "settings": {
                "number_of_shards": 1,
                # One node here; a user's cluster can raise it on the index.
                "number_of_replicas": 0,
                "refresh_interval": refresh_interval,
                "default_pipeline": PIPELINE,
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {name: dict(spec) for name, spec in FIELDS[kind].items()},
            },
        },
        "_meta": {"description": f"VitalStream {kind} (vitalstream.sinks.search)"},
    }


def pipeline() -> dict[str, Any]:
    """The ingest pipeline: ``indexed_at`` is the server's clock when it took the document."""
    return {
        "description": "VitalStream: record when each document was indexed",
        "processors": [{"set": {"field": "indexed_at", "value": "{{_ingest.timestamp}}"}}],
    }


# --------------------------------------------------------------------------- HTTP


def request(
    url: str,
    method: str = "GET",
    body: Any = None,
    *,
    ndjson: bool = False,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """One REST call; a JSON body in, the JSON answer out; HTTP errors become SearchError
    with the server's own explanation."""
    data = None
    headers = {}
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers["Content-Type"] = "application/x-ndjson" if ndjson else "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read().decode()
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")[:2000]
        raise SearchError(f"{method} {url}: HTTP {err.code}: {detail}") from err
    except (urllib.error.URLError, OSError) as err:
        raise SearchError(f"{method} {url}: {err}") from err
    return json.loads(text) if text else {}


def setup(url: str, prefix: str, refresh_interval: str = "1s") -> None:
    """Apply the pipeline and both index templates (idempotent: PUT replaces them)."""
    base = url.rstrip("/")
    request(f"{base}/_ingest/pipeline/{PIPELINE}", "PUT", pipeline())
    for kind in FIELDS:
        request(
            f"{base}/_index_template/{index_name(prefix, kind)}",
            "PUT",
            index_template(prefix, kind, refresh_interval),
        )


def server_info(url: str) -> dict[str, str]:
    """Which engine and version answered (for the run's provenance and the paper's text)."""
    root = request(url.rstrip("/") + "/")
    version = root.get("version", {})
    return {
        "url": url,
        "distribution": str(version.get("distribution", "elasticsearch")),
        "version": str(version.get("number", "unknown")),
    }


def wait_until_up(url: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Cluster health once the server answers yellow or green (a user's server too)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return request(
                f"{url.rstrip('/')}/_cluster/health?wait_for_status=yellow&timeout=5s", timeout=10
            )
        except SearchError as err:
            last = err
            time.sleep(1.0)
    raise SearchError(f"search server at {url} not ready after {timeout_s:.0f} s: {last}")


# --------------------------------------------------------------------------- documents


def _iso(values: pd.Series) -> list[str | None]:
    """UTC timestamps as ISO strings with milliseconds (what both servers parse)."""
    stamps = pd.to_datetime(values, utc=True)
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
    return [None if pd.isna(s) else t for s, t in zip(stamps, text, strict=True)]


def _documents(frame: pd.DataFrame, kind: str, run: str) -> list[dict[str, Any]]:
    """JSON-ready documents: the declared fields a frame has, NaN as absent."""
    columns = [c for c in FIELDS[kind] if c in frame.columns and c not in ("run", "indexed_at")]
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        spec = FIELDS[kind][col]
        if spec["type"] == "date":
            out[col] = _iso(frame[col])
        elif spec["type"] in ("integer", "long"):
            out[col] = frame[col].astype("Int64").astype(object).where(frame[col].notna(), None)
        elif spec["type"] == "boolean":
            out[col] = frame[col].astype(bool)
        elif spec["type"] == "double":
            values = frame[col].astype("float64")
            out[col] = values.astype(object).where(np.isfinite(values), None)
        else:
            out[col] = frame[col].astype(str)
    docs = out.to_dict(orient="records")
    for doc in docs:
        doc["run"] = run
        for key in [k for k, v in doc.items() if v is None]:
            del doc[key]
    return docs


def document_ids(frame: pd.DataFrame, kind: str, run: str) -> list[str]:
    """Deterministic ids: the same alert or window of the same run always gets the same id."""
    if kind == ALERTS:
        return [f"{run}:{a}" for a in frame["alert_id"].astype(str)]
    starts = pd.to_datetime(frame["window_start"], utc=True).astype("datetime64[ms, UTC]")
    return [
        f"{run}:{p}:{int(t)}"
        for p, t in zip(frame["patient_id"].astype(str), starts.astype("int64"), strict=True)
    ]


def _bulk_bodies(
    index: str, ids: Sequence[str], docs: Sequence[Mapping[str, Any]]
) -> Iterator[str]:
    lines: list[str] = []
    size = 0
    for doc_id, doc in zip(ids, docs, strict=True):
        pair = json.dumps({"create": {"_index": index, "_id": doc_id}}) + "\n" + json.dumps(doc)
        lines.append(pair)
        size += len(pair) + 1
        if size >= BULK_BYTES:
            yield "\n".join(lines) + "\n"
            lines, size = [], 0
    if lines:
        yield "\n".join(lines) + "\n"


@dataclass
class BulkResult:
    """What one bulk call did: documents taken, ids already there, and each refused document
    with the reason."""

    indexed: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    created_ids: set[str] = field(default_factory=set)
    # Documents the server could not take now (429, 5xx per item): to be sent again.
    transient: list[dict[str, Any]] = field(default_factory=list)


def bulk_index(
    url: str,
    index: str,
    frame: pd.DataFrame,
    kind: str,
    run: str,
    *,
    refresh: str = "wait_for",
    extra: Mapping[str, Any] | None = None,
) -> BulkResult:
    """Index a frame's rows as documents of ``kind`` (``extra`` fields added to each).

    ``refresh=wait_for``: the call returns once the documents are visible to searches, so its
    return time is the moment they became visible. A large frame goes in several requests;
    only the last one waits for the refresh (a refresh makes every earlier one visible too).
    """
    result = BulkResult()
    if frame.empty:
        return result
    docs = _documents(frame, kind, run)
    if extra:
        for doc in docs:
            doc.update(extra)
    ids = document_ids(frame, kind, run)
    bodies = list(_bulk_bodies(index, ids, docs))
    for i, body in enumerate(bodies):
        policy = refresh if i == len(bodies) - 1 else "false"
        target = f"{url.rstrip('/')}/_bulk?refresh={policy}"
        answer = request(target, "POST", body, ndjson=True, timeout=120)
        for item in answer.get("items", []):
            op = item.get("create", {})
            status = op.get("status", 500)
            if status < 300:
                result.indexed += 1
                result.created_ids.add(op.get("_id"))
            elif status == 409:  # the id exists: the first write stands
                result.duplicates += 1
            elif status == 429 or status >= 500:  # overloaded or failing: not the document's fault
                result.transient.append({"id": op.get("_id"), "error": op.get("error")})
            else:
                result.errors.append({"id": op.get("_id"), "error": op.get("error")})
    return result


def read_search_commits(path: Path) -> pd.DataFrame:
    """The indexer's log; a batch replayed after a restart keeps its last record."""
    columns = ["query", "batch_id", "alerts", "windows", "duplicates", "errors", "visible_wall_ns"]
    if not path.exists():
        return pd.DataFrame(columns=columns)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows).drop_duplicates(["query", "batch_id"], keep="last")


# --------------------------------------------------------------------------- reading back


def scroll(url: str, index: str, query: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every matching document's source (with ``_id``), through the scroll API."""
    base = url.rstrip("/")
    answer = request(
        f"{base}/{index}/_search?scroll=2m",
        "POST",
        {"size": SCROLL_SIZE, "query": query, "sort": ["_doc"]},
    )
    scroll_id = answer.get("_scroll_id")
    try:
        while hits := answer["hits"]["hits"]:
            for hit in hits:
                yield {"_id": hit["_id"], **hit["_source"]}
            answer = request(
                f"{base}/_search/scroll", "POST", {"scroll": "2m", "scroll_id": scroll_id}
            )
            scroll_id = answer.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            with contextlib.suppress(SearchError):
                request(f"{base}/_search/scroll", "DELETE", {"scroll_id": scroll_id})


def export(url: str, prefix: str, kind: str, run: str) -> pd.DataFrame:
    """A run's documents of one kind as a frame; date fields as UTC timestamps."""
    index = index_name(prefix, kind)
    request(f"{url.rstrip('/')}/{index}/_refresh", "POST")
    rows = list(scroll(url, index, {"term": {"run": run}}))
    frame = pd.DataFrame(rows, columns=["_id", *FIELDS[kind]]) if not rows else pd.DataFrame(rows)
    for col, spec in FIELDS[kind].items():
        if col not in frame:
            continue
        if spec["type"] == "date":
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    return frame.sort_values("_id", kind="stable").reset_index(drop=True)


def delete_run(url: str, prefix: str, run: str) -> int:
    """Remove a run's documents before it runs again, so the index never mixes two attempts
    (ids are deterministic, but a rerun may produce fewer alerts). Bulk deletes by id: the
    delete-by-query API lives in a module a minimal node may not have."""
    base = url.rstrip("/")
    deleted = 0
    for kind in FIELDS:
        index = index_name(prefix, kind)
        if not _exists(f"{base}/{index}"):
            continue
        request(f"{base}/{index}/_refresh", "POST")
        ids = [doc["_id"] for doc in scroll(url, index, {"term": {"run": run}})]
        for start in range(0, len(ids), SCROLL_SIZE):
            chunk = ids[start : start + SCROLL_SIZE]
            body = "".join(
                json.dumps({"delete": {"_index": index, "_id": i}}) + "\n" for i in chunk
            )
            request(f"{base}/_bulk?refresh=wait_for", "POST", body, ndjson=True, timeout=120)
            deleted += len(chunk)
    return deleted


def _exists(url: str) -> bool:
    try:
        request(url, "HEAD")
    except SearchError as err:
        if "HTTP 404" in str(err):
            return False
        raise
    return True


COMPARED = ("patient_id", "rule", "kind", "severity", "value", "time", "suppressed")


def sink_order(parquet: pd.DataFrame) -> pd.DataFrame:
    """The sink's rows in the order they were written: by query, then batch (numerically),
    then row; this is the order in which the indexer created documents."""
    keys = [k for k in ("query", "batch_id") if k in parquet]
    if not keys:
        return parquet.reset_index(drop=True)
    ordered = parquet.assign(_row=np.arange(len(parquet)))
    ordered["_batch"] = ordered["batch_id"].astype("int64") if "batch_id" in keys else 0
    by = [k for k in ("query",) if k in ordered] + ["_batch", "_row"]
    ordered = ordered.sort_values(by, kind="stable")
    return ordered.drop(columns=["_row", "_batch"]).reset_index(drop=True)


def compare_alerts(indexed: pd.DataFrame, parquet: pd.DataFrame, run: str) -> dict[str, Any]:
    """Does the index hold exactly the Parquet sink's alerts? Ids both ways, then fields.

    The sink's alert set is its distinct alert ids, each as first written (sink rows that
    repeat an id, from a duplicated reading, are counted as ``duplicate_sink_rows``). Returns
    counts, up to ten example ids of each kind of difference, and ``equal``.
    """
    ordered = sink_order(parquet)
    ids = pd.Index(document_ids(ordered, ALERTS, run)) if len(ordered) else pd.Index([])
    repeats = ids.duplicated()
    expected = ordered.loc[~repeats].set_index(ids[~repeats])
    got = indexed.set_index("_id") if len(indexed) else pd.DataFrame(columns=COMPARED)
    missing = sorted(set(expected.index) - set(got.index))
    extra = sorted(set(got.index) - set(expected.index))
    common = sorted(set(expected.index) & set(got.index))
    differing: list[str] = []
    if common:
        left = expected.loc[common, list(COMPARED)]
        right = got.loc[common, list(COMPARED)]
        for col in COMPARED:
            a, b = left[col], right[col]
            if col == "time":
                a = pd.to_datetime(a, utc=True).dt.floor("ms")
                b = pd.to_datetime(b, utc=True)
            if col == "value":
                same = np.isclose(a.astype(float), b.astype(float), equal_nan=True, rtol=0, atol=0)
            else:
                same = (a.astype(str) == b.astype(str)).to_numpy()
            differing.extend(left.index[~same])
    differing = sorted(set(differing))
    return {
        "run": run,
        "parquet_alerts": len(expected),
        "duplicate_sink_rows": int(repeats.sum()),
        "index_alerts": len(indexed),
        "missing_in_index": len(missing),
        "extra_in_index": len(extra),
        "differing_fields": len(differing),
        "examples": {"missing": missing[:10], "extra": extra[:10], "differing": differing[:10]},
        "equal": not missing and not extra and not differing,
    }


def resolve_url(config: Mapping[str, Any], state_file: Path | None) -> str:
    """The configured server, else the node the workflow started (its state file)."""
    configured = (config.get("search") or {}).get("url")
    if configured:
        return str(configured)
    if state_file is None or not state_file.exists():
        raise SearchError(
            "no search server: set search.url in config, or run through the workflow, which "
            "starts a local OpenSearch node and passes --search-state"
        )
    from vitalstream.services import searchnode

    return searchnode.read_url(state_file)
