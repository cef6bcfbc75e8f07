"""vitalstream.measure.faultsummary: the alerts topic's and the index's audits of the fault runs
become the paper's macros, and a run without an audit reads as missing, not as zero."""

from __future__ import annotations

from vitalstream.measure import faultsummary


def _run(kind: str, topic_dups: int, index_lost: int) -> dict:
    return {
        "kind": kind,
        "sinks": {
            "topic": {"expected": 10, "lost": 0, "duplicates": topic_dups, "unexpected": 0},
            "index": {"expected": 30, "lost": index_lost, "duplicates": 1, "unexpected": 0},
        },
    }


def test_sink_macros_per_fault_and_the_total_lost() -> None:
    runs = {
        "spark_kill": _run("spark_kill", 2, 0),
        "broker_restart": _run("broker_restart", 0, 0),
        "broker_kill": _run("broker_kill", 0, 3),
    }
    values = faultsummary.sink_macro_values(runs)
    assert values["FaultSparkTopicDuplicates"] == 2
    assert values["FaultSparkIndexExpected"] == 30
    assert values["FaultKillIndexLost"] == 3
    assert values["FaultSinksLost"] == 3
    assert all(name.isalpha() for name in values)


def test_a_run_without_an_index_audit_is_missing_not_zero() -> None:
    runs = {"spark_kill": {**_run("spark_kill", 0, 0), "sinks": {"topic": None, "index": None}}}
    values = faultsummary.sink_macro_values(runs)
    assert values["FaultSparkIndexLost"] is None
    assert values["FaultRestartTopicLost"] is None  # no such run at all
    assert values["FaultSinksLost"] is None
    assert faultsummary.sink_counts({"kind": "broker_kill"}, "topic")["lost"] is None
