"""vitalstream.sinks.search against a real OpenSearch node: templates, the job's indexer, read-back
and comparison with the Parquet sink, reruns without duplicates, refused documents counted, a
batch searchable before its sinks return, a gone server failing the batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vitalstream.core.diagnostics import alert_id
from vitalstream.services import broker, searchnode
from vitalstream.sinks import search
from vitalstream.sinks.batch import Sinks
from vitalstream.sinks.indexer import Indexer, IndexingError
from vitalstream.stream.spec import JobSpec

pytestmark = pytest.mark.integration
PREFIX = "vstest"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    handle = searchnode.start_node(tmp_path_factory.mktemp("opensearch"), tag="pytest-search")
    try:
        search.setup(handle.url, PREFIX)
        yield handle.url
    finally:
        searchnode.stop(handle)


def _batch(n: int, start: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    starts = pd.date_range(start, periods=n, freq="min", tz="UTC")
    patients = [f"P{i % 3:03d}" for i in range(n)]
    windows = pd.DataFrame(
        {
            "window_start": starts,
            "window_end": starts + pd.Timedelta(minutes=1),
            "patient_id": patients,
            "n": 60,
            "hr_mean": rng.normal(110, 15, n),
            "spo2_mean": rng.normal(94, 2, n),
            "news2_total": rng.integers(0, 9, n),
            "fired_rules": [[] for _ in range(n)],  # sink columns the template lacks are left out
        }
    )
    fired = windows[windows["hr_mean"] > 110]
    alerts = pd.DataFrame(
        {
            "alert_id": [
                alert_id(p, "tachycardia", int(t.value // 1_000_000))
                for p, t in zip(fired["patient_id"], fired["window_start"], strict=True)
            ],
            "patient_id": fired["patient_id"].to_numpy(),
            "kind": "window",
            "rule": "tachycardia",
            "severity": "high",
            "column": "hr_mean",
            "value": fired["hr_mean"].to_numpy(),
            "threshold": 110.0,
            "time": fired["window_start"].to_numpy(),
            "window_start": fired["window_start"].to_numpy(),
            "window_end": fired["window_end"].to_numpy(),
            "last_event_time": fired["window_end"].to_numpy(),
            "last_send_wall_ns": np.int64(10**18),
            "suppressed": False,
        }
    )
    for col in ("time", "window_start", "window_end", "last_event_time"):
        alerts[col] = pd.to_datetime(alerts[col], utc=True)
    return alerts, windows


def _index_run(url: str, run: str, out: Path, batches: list) -> pd.DataFrame:
    indexer = Indexer(search.SearchSink(url, PREFIX, run), out)
    for batch_id, (alerts, windows) in enumerate(batches):
        indexer.index_batch("windows", batch_id, alerts, windows)
    return pd.concat([a for a, _ in batches], ignore_index=True)


def test_the_index_holds_exactly_the_alerts_and_windows_indexed(url: str, tmp_path: Path) -> None:
    run = "skeleton/indexed/rep1"
    batches = [_batch(40, "2026-01-01 08:00", 1), _batch(40, "2026-01-01 09:00", 2)]
    parquet = _index_run(url, run, tmp_path, batches)
    assert len(parquet) > 10

    indexed = search.export(url, PREFIX, search.ALERTS, run)
    check = search.compare_alerts(indexed, parquet, run)
    assert check["equal"], check
    assert indexed["indexed_at"].notna().all()
    assert len(search.export(url, PREFIX, search.WINDOWS, run)) == 80

    commits = search.read_search_commits(tmp_path / "search_commits.jsonl")
    assert commits["errors"].sum() == 0
    assert commits["alerts"].sum() == len(parquet)
    assert (commits["visible_wall_ns"] > 0).all()


def test_a_replayed_batch_does_not_duplicate_documents(url: str, tmp_path: Path) -> None:
    """The same batch indexed again (a micro-batch replayed after a restart): every id is
    there already, so nothing is added and the collisions are counted, not errors."""
    run = "rerun/base/rep1"
    batches = [_batch(30, "2026-01-02 08:00", 3)]
    parquet = _index_run(url, run, tmp_path / "a", batches)
    _index_run(url, run, tmp_path / "b", batches)
    assert len(search.export(url, PREFIX, search.ALERTS, run)) == len(parquet)
    assert len(search.export(url, PREFIX, search.WINDOWS, run)) == 30
    again = search.read_search_commits(tmp_path / "b" / "search_commits.jsonl")
    assert again[["alerts", "windows", "errors"]].sum().tolist() == [0, 0, 0]
    assert again["duplicates"].sum() == len(parquet) + 30


def test_delete_run_removes_only_that_run(url: str, tmp_path: Path) -> None:
    _index_run(url, "keep/base/rep1", tmp_path / "k", [_batch(10, "2026-01-03 08:00", 4)])
    _index_run(url, "drop/base/rep1", tmp_path / "d", [_batch(10, "2026-01-03 08:00", 4)])
    assert search.delete_run(url, PREFIX, "drop/base/rep1") > 0
    assert search.export(url, PREFIX, search.WINDOWS, "drop/base/rep1").empty
    assert len(search.export(url, PREFIX, search.WINDOWS, "keep/base/rep1")) == 10


def test_a_document_the_template_refuses_is_counted_not_lost(url: str, tmp_path: Path) -> None:
    """A value out of its mapped field's range: the index refuses that document; the indexer
    records it in search_errors.jsonl and counts it, and indexes the others."""
    alerts, windows = _batch(12, "2026-01-04 08:00", 5)
    windows.loc[3, "n"] = 2**40  # an integer field
    search_sink = search.SearchSink(url, PREFIX, "bad/base/rep1")
    result = search.bulk_index(
        search_sink.url, search_sink.index(search.WINDOWS), windows, search.WINDOWS, "bad/base/rep1"
    )
    assert result.indexed == 11
    assert len(result.errors) == 1
    assert result.errors[0]["error"]["type"] == "mapper_parsing_exception"

    indexer = Indexer(search.SearchSink(url, PREFIX, "bad/base/rep2"), tmp_path)
    indexer.index_batch("windows", 0, alerts, windows)  # a refusal does not fail the batch
    commits = search.read_search_commits(tmp_path / "search_commits.jsonl")
    assert commits[["windows", "errors"]].to_dict("records") == [{"windows": 11, "errors": 1}]
    errors = [json.loads(x) for x in (tmp_path / "search_errors.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in errors] == ["windows"]


def test_the_template_types_the_fields(url: str) -> None:
    mapping = search.request(f"{url}/{PREFIX}-alerts/_mapping")
    properties = mapping[f"{PREFIX}-alerts"]["mappings"]["properties"]
    assert properties["time"]["type"] == "date"
    assert properties["indexed_at"]["type"] == "date"
    assert properties["patient_id"]["type"] == "keyword"
    assert properties["value"]["type"] == "double"


def test_an_alert_repeated_in_a_later_batch_counts_as_a_duplicate_there(
    url: str, tmp_path: Path
) -> None:
    run = "repeat/base/rep1"
    batches = [_batch(20, f"2026-01-05 {8 + i:02d}:00", 10 + i) for i in range(3)]
    repeated = batches[0][0].iloc[[0]]
    batches[2] = (pd.concat([batches[2][0], repeated], ignore_index=True), batches[2][1])
    _index_run(url, run, tmp_path, batches)
    commits = search.read_search_commits(tmp_path / "search_commits.jsonl")
    assert commits["batch_id"].tolist() == [0, 1, 2]
    assert commits["alerts"].tolist() == [len(a) - (i == 2) for i, (a, _) in enumerate(batches)]
    assert commits["duplicates"].tolist() == [0, 0, 1]
    parquet = pd.concat([a for a, _ in batches], ignore_index=True)
    check = search.compare_alerts(search.export(url, PREFIX, search.ALERTS, run), parquet, run)
    assert check["equal"] and check["duplicate_sink_rows"] == 1, check


def _sinks(url: str, out: Path, run: str, retry_s: float = 60.0) -> Sinks:
    spec = JobSpec(
        bootstrap_servers="127.0.0.1:9",  # no alerts topic: the index alone
        topic="unused",
        out_dir=out,
        window_s=60,
        watermark_s=120,
        search=search.SearchSink(url, PREFIX, run),
    )
    return Sinks(spec, index_retry_s=retry_s)


def _visible_now(url: str, run: str) -> int:
    """Documents of ``run`` a search sees right now, without forcing a refresh."""
    body = {"query": {"term": {"run": run}}, "size": 0, "track_total_hits": True}
    answer = search.request(f"{url}/{PREFIX}-alerts/_search", "POST", body)
    return int(answer["hits"]["total"]["value"])


def test_a_batch_is_searchable_before_its_sinks_return_and_commit(url: str, tmp_path: Path) -> None:
    """The index is a sink of the batch, not a follower: when deliver() returns, the batch's
    alerts are searchable and only then is the batch's commit record written."""
    run = "sync/base/rep1"
    alerts, windows = _batch(30, "2026-01-06 08:00", 21)
    sinks = _sinks(url, tmp_path, run)
    sinks.deliver("windows", 0, alerts, windows, 123, {"alerts": len(alerts)})
    assert _visible_now(url, run) == len(alerts) > 0
    (record,) = [json.loads(x) for x in (tmp_path / "commits.jsonl").read_text().splitlines()]
    assert record["commit_wall_ns"] == 123  # the Parquet stamp, unchanged
    assert record["complete_wall_ns"] > 123
    searched = search.read_search_commits(tmp_path / "search_commits.jsonl")
    assert searched[["alerts", "errors"]].to_dict("records") == [
        {"alerts": len(alerts), "errors": 0}
    ]
    assert searched["visible_wall_ns"].iloc[0] <= record["complete_wall_ns"]
    sinks.close()


def test_a_gone_server_fails_the_batch_and_writes_no_commit(tmp_path: Path) -> None:
    """Nothing answers: the batch retries for its bounded time, then raises (Spark does not
    commit it; a restart replays it), and the sinks' commit record is not written."""
    gone = f"http://127.0.0.1:{broker.free_port()}"
    alerts, windows = _batch(10, "2026-01-06 09:00", 22)
    sinks = _sinks(gone, tmp_path, "gone/base/rep1", retry_s=2.0)
    with pytest.raises(IndexingError, match="not indexed within 2 s"):
        sinks.deliver("windows", 0, alerts, windows, 1, {"alerts": len(alerts)})
    assert not (tmp_path / "commits.jsonl").exists()
