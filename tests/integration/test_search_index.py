"""vitalstream.sinks.search against a real OpenSearch node: templates, the job's indexer, read-back
and comparison with the Parquet sink, reruns without duplicates, refused documents counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vitalstream.core.diagnostics import alert_id
from vitalstream.services import searchnode
from vitalstream.sinks import search

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
    indexer = search.Indexer(search.SearchSink(url, PREFIX, run), out)
    for batch_id, (alerts, windows) in enumerate(batches):
        indexer.submit("windows", batch_id, alerts, windows)
    indexer.close()
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

    indexer = search.Indexer(search.SearchSink(url, PREFIX, "bad/base/rep2"), tmp_path)
    indexer.submit("windows", 0, alerts, windows)
    indexer.close()
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


def test_batches_queued_together_are_indexed_in_one_round_and_counted_per_batch(
    url: str, tmp_path: Path
) -> None:
    """Micro-batches that arrive faster than the index refreshes share a round; each still
    gets its own record, and an alert repeated in a later batch counts as a duplicate there."""
    run = "rounds/base/rep1"
    batches = [_batch(20, f"2026-01-05 {8 + i:02d}:00", 10 + i) for i in range(12)]
    repeated = batches[3][0].iloc[[0]]
    batches[7] = (pd.concat([batches[7][0], repeated], ignore_index=True), batches[7][1])
    indexer = search.Indexer(search.SearchSink(url, PREFIX, run), tmp_path)
    for batch_id, (alerts, windows) in enumerate(batches):
        indexer.submit("windows", batch_id, alerts, windows)
    indexer.close()
    commits = search.read_search_commits(tmp_path / "search_commits.jsonl")
    assert commits["batch_id"].tolist() == list(range(12))
    assert commits["alerts"].tolist() == [len(a) - (i == 7) for i, (a, _) in enumerate(batches)]
    assert commits["duplicates"].tolist() == [int(i == 7) for i in range(12)]
    assert (commits["windows"] == 20).all() and (commits["errors"] == 0).all()
    # Fewer refresh waits than batches: some rounds held several batches.
    assert commits["visible_wall_ns"].nunique() < 12
    parquet = pd.concat([a for a, _ in batches], ignore_index=True)
    check = search.compare_alerts(search.export(url, PREFIX, search.ALERTS, run), parquet, run)
    assert check["equal"] and check["duplicate_sink_rows"] == 1, check
