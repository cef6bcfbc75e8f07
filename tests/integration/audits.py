"""Checks of a fault run's result (vitalstream.experiments.faults.run_fault), shared by the
fault tests and the workflow test, which reads the quick profile's fault run."""

from __future__ import annotations


def assert_no_sink_lost_an_alert(result: dict) -> None:
    """Every alert of the reference is in the alerts topic (emitted ones) and in the index
    (all); repeats are allowed there and counted, never an alert missing or invented."""
    topic, index = result["sinks"]["topic"], result["sinks"]["index"]
    assert topic["expected"] > 0 and index["expected"] >= topic["expected"]
    for audit in (topic, index):
        assert audit["lost"] == audit["unexpected"] == 0, result["sinks"]
        assert audit["duplicates"] >= 0
    assert index["refused"] == 0


def assert_the_restarted_job_wrote_the_same_alerts(result: dict) -> None:
    """A job killed mid-run and restarted from its checkpoint (fault ``spark_kill``) wrote
    exactly the alerts of the uninterrupted run, and every sink has them."""
    assert result["job_starts"] == 2  # the kill really happened, mid-run
    assert result["batches_committed_at_kill"]["windows"] > 0
    assert result["alerts_expected"] > 0
    assert result["alerts_lost"] == result["alerts_unexpected"] == 0
    assert result["alerts_duplicated"] == 0
    assert result["alerts_equal"] and result["ok"]
    # The topic is at-least-once: every alert reached it, repeats are allowed and counted.
    assert result["published_lost"] == 0
    assert result["published_distinct"] <= result["published_alerts"]
    assert_no_sink_lost_an_alert(result)
