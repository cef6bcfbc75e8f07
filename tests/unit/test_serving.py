"""The serving paragraph's macro values come from the indexed run's files, n/a where absent."""

from __future__ import annotations

from vitalstream.serving import values as serving

SOURCES = {"indexed": "i.json", "headline": "h.json", "check": "c.json", "hyper": "x.json"}


def _latency(p50: float) -> dict:
    return {"count": 10, "p50": p50, "p90": p50 * 1.5, "p99": p50 * 2, "max": p50 * 3}


def test_values_of_an_indexed_run() -> None:
    indexed = {
        "alert_latency_ms": _latency(2000.0),
        "search": {
            "alerts_indexed": 90,
            "windows_indexed": 400,
            "duplicates": 1,
            "errors": 0,
            "visible_latency_ms": _latency(2500.0),
        },
    }
    check = {"equal": True, "windows_equal": True, "index_alerts": 90, "duplicate_sink_rows": 1}
    values = serving.paper_values(
        indexed,
        {"alert_latency_ms": _latency(1900.0)},
        check,
        {"rows": {"alerts": 91, "hourly": 12}},
        SOURCES,
        server={"distribution": "opensearch", "version": "2.19.6"},
    )
    flat = {name: spec["value"] for name, spec in values.items()}
    assert flat["ServingIndexLatencyPfifty"] == 2500.0
    assert flat["ServingParquetLatencyPninetynine"] == 4000.0
    assert flat["ServingIndexOverParquet"] == 1.25
    assert flat["ServingUnindexedLatencyPfifty"] == 1900.0
    assert flat["ServingCheckVerdict"] == "exactly"
    assert (flat["ServingHyperAlerts"], flat["ServingHyperHours"]) == (91, 12)
    assert flat["ServingDuplicateRows"] == 1
    assert flat["ServingEngine"] == "OpenSearch~2.19.6"
    assert values["ServingIndexErrors"]["source"] == "i.json"


def test_a_run_without_an_index_prints_na_and_a_failed_check_says_so() -> None:
    values = serving.paper_values({}, {}, {"equal": False, "windows_equal": True}, {}, SOURCES)
    flat = {name: spec["value"] for name, spec in values.items()}
    assert flat["ServingIndexLatencyPfifty"] == "n/a"
    assert flat["ServingIndexOverParquet"] == "n/a"
    assert flat["ServingEngine"] == "n/a"
    assert flat["ServingCheckVerdict"] == "not exactly"


def test_an_indexed_headline_run_has_no_unindexed_median() -> None:
    indexed = {"alert_latency_ms": _latency(2000.0), "search": {"errors": 0}}
    values = serving.paper_values(indexed, indexed, {}, {}, SOURCES)
    assert values["ServingUnindexedLatencyPfifty"]["value"] == "n/a"
