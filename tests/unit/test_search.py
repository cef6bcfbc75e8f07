"""vitalstream.sinks.search without a server: documents, ids, the comparison, and what an
unreachable server does to a batch (it fails after bounded retries, never silent loss)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vitalstream.core.diagnostics import alert_id
from vitalstream.measure import metrics
from vitalstream.services import broker
from vitalstream.sinks import search
from vitalstream.sinks.indexer import Indexer, IndexingError


def _alerts(n: int = 4) -> pd.DataFrame:
    times = pd.date_range("2026-01-01 08:00", periods=n, freq="min", tz="UTC")
    patients = [f"P{i % 2:03d}" for i in range(n)]
    return pd.DataFrame(
        {
            "alert_id": [
                alert_id(p, "tachycardia", int(t.value // 1_000_000))
                for p, t in zip(patients, times, strict=True)
            ],
            "patient_id": patients,
            "kind": "window",
            "rule": "tachycardia",
            "severity": "high",
            "column": "hr_mean",
            "value": np.linspace(121.1, 130.7, n),
            "threshold": 120.0,
            "time": times,
            "window_start": times,
            "window_end": times + pd.Timedelta(minutes=1),
            "last_event_time": times + pd.Timedelta(seconds=59.5),
            "last_send_wall_ns": np.arange(n, dtype="int64") * 1_000_000 + 10**18,
            "suppressed": [False, True, False, False][:n],
        }
    )


def test_documents_carry_declared_fields_and_iso_dates() -> None:
    docs = search._documents(_alerts(2), search.ALERTS, "skeleton/indexed/rep1")
    assert set(docs[0]) <= set(search.ALERT_FIELDS)
    assert docs[0]["run"] == "skeleton/indexed/rep1"
    assert docs[0]["time"] == "2026-01-01T08:00:00.000Z"
    assert docs[0]["last_event_time"] == "2026-01-01T08:00:59.500Z"
    assert docs[1]["suppressed"] is True
    json.dumps(docs)  # JSON-ready: no numpy scalars, no NaN


def test_missing_values_are_left_out_not_sent_as_nan() -> None:
    windows = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "window_start": pd.to_datetime(["2026-01-01 08:00"], utc=True),
            "window_end": pd.to_datetime(["2026-01-01 08:01"], utc=True),
            "hr_mean": [np.nan],
            "spo2_mean": [97.5],
            "news2_total": [3],
        }
    )
    (doc,) = search._documents(windows, search.WINDOWS, "r")
    assert "hr_mean" not in doc
    assert doc["spo2_mean"] == 97.5
    assert doc["news2_total"] == 3


def test_ids_are_deterministic_and_differ_between_runs() -> None:
    alerts = _alerts()
    first = search.document_ids(alerts, search.ALERTS, "a/b/rep1")
    assert first == search.document_ids(alerts.copy(), search.ALERTS, "a/b/rep1")
    assert len(set(first)) == len(first)
    assert not set(first) & set(search.document_ids(alerts, search.ALERTS, "a/b/rep2"))


def test_bulk_bodies_are_split_and_keep_every_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "BULK_BYTES", 600)
    alerts = _alerts()
    docs = search._documents(alerts, search.ALERTS, "r")
    ids = search.document_ids(alerts, search.ALERTS, "r")
    bodies = list(search._bulk_bodies("vitalstream-alerts", ids, docs))
    assert len(bodies) > 1
    lines = [line for body in bodies for line in body.splitlines()]
    assert [json.loads(line)["create"]["_id"] for line in lines[::2]] == ids


def _as_indexed(alerts: pd.DataFrame, run: str) -> pd.DataFrame:
    """What search.export returns: the documents with _id, dates at millisecond precision."""
    docs = search._documents(alerts, search.ALERTS, run)
    frame = pd.DataFrame(docs).assign(_id=search.document_ids(alerts, search.ALERTS, run))
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame


def test_compare_alerts_equal_and_each_kind_of_difference() -> None:
    alerts = _alerts()
    run = "skeleton/indexed/rep1"
    assert search.compare_alerts(_as_indexed(alerts, run), alerts, run)["equal"]

    missing = search.compare_alerts(_as_indexed(alerts.iloc[1:], run), alerts, run)
    assert (missing["equal"], missing["missing_in_index"]) == (False, 1)

    extra = search.compare_alerts(_as_indexed(alerts, run), alerts.iloc[1:], run)
    assert (extra["equal"], extra["extra_in_index"]) == (False, 1)

    # A duplicated reading's second alert: the same id again, suppressed; the index keeps the
    # first write, and the sink's set is its distinct ids as first written.
    repeated = pd.concat([alerts, alerts.iloc[[0]].assign(suppressed=True)], ignore_index=True)
    collapsed = search.compare_alerts(_as_indexed(alerts, run), repeated, run)
    assert (collapsed["equal"], collapsed["duplicate_sink_rows"]) == (True, 1)
    later_first = search.compare_alerts(_as_indexed(alerts, run), repeated.iloc[::-1], run)
    assert (later_first["equal"], later_first["differing_fields"]) == (False, 1)

    changed = _as_indexed(alerts, run)
    changed.loc[2, "value"] += 1e-9
    differing = search.compare_alerts(changed, alerts, run)
    assert (differing["equal"], differing["differing_fields"]) == (False, 1)


def test_an_unreachable_server_fails_the_batch_after_its_retries(tmp_path: Path) -> None:
    """Nothing listens on the port: the indexer retries for its bounded time, then raises
    (the foreachBatch call fails and Spark replays the batch), and records nothing as
    indexed; an unreachable server is not a refusal to dead-letter."""
    url = f"http://127.0.0.1:{broker.free_port()}"
    indexer = Indexer(search.SearchSink(url, "vitalstream", "r"), tmp_path, retry_s=1.0)
    started = time.monotonic()
    with pytest.raises(IndexingError, match="3 alerts of batch windows/0 not indexed"):
        indexer.index_batch("windows", 0, _alerts(3), pd.DataFrame())
    assert time.monotonic() - started < 10
    assert search.read_search_commits(tmp_path / "search_commits.jsonl").empty
    assert not (tmp_path / "search_errors.jsonl").exists()


def test_search_metrics_latency_is_visible_time_minus_send_stamp(tmp_path: Path) -> None:
    alerts = _alerts(2).assign(query="windows", batch_id=[0, 1])
    sent = alerts["last_send_wall_ns"].to_numpy()
    records = [
        {
            "query": "windows",
            "batch_id": 0,
            "alerts": 1,
            "windows": 5,
            "duplicates": 1,
            "errors": 0,
            "visible_wall_ns": int(sent[0]) + 2_000_000_000,
        },
        {
            "query": "windows",
            "batch_id": 1,
            "alerts": 1,
            "windows": 5,
            "duplicates": 1,
            "errors": 0,
            "visible_wall_ns": int(sent[1]) + 4_000_000_000,
        },
    ]
    # A third batch whose alert the index refused: no visible time, left out of the latency.
    alerts = pd.concat([alerts, _alerts(3).iloc[[2]].assign(query="windows", batch_id=2)])
    records.append(
        {"query": "windows", "batch_id": 2, "alerts": 0, "windows": 5, "duplicates": 0,
         "errors": 1, "visible_wall_ns": None}
    )  # fmt: skip
    (tmp_path / "search_commits.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = metrics.search_metrics(tmp_path, alerts)
    assert result is not None
    counts = ("alerts_indexed", "windows_indexed", "duplicates", "errors")
    assert tuple(result[k] for k in counts) == (2, 15, 2, 1)
    assert result["batches_without_visible_time"] == 1
    assert result["visible_latency_ms"]["count"] == 2
    assert result["visible_latency_ms"]["p50"] == pytest.approx(3000.0)
    assert metrics.search_metrics(tmp_path / "none", alerts) is None
