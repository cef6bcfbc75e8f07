"""Issue #19 off the stream: the message checks as settings, duplicates in the batch reference,
their count in the run metrics, and the validation's exact missing-equals-dropped check.

The stream's side (each bad message dead-lettered with its reason, duplicates dropped and
counted by Spark) is tests/integration/test_streaming.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.config import ConfigError
from vitalstream.core.diagnostics import DiagnosticsSpec, ThresholdRule
from vitalstream.core.runsettings import Settings
from vitalstream.core.settings import MessageChecks, SettingsError
from vitalstream.measure import metrics
from vitalstream.reference import batch as reference
from vitalstream.reference import validation
from vitalstream.stream.spec import JobSpec

BASE = pd.Timestamp("2026-01-01T00:00:00Z")
CRITICAL = ThresholdRule("critical_tachycardia", "hr", ">", 150, "high")


def _events(times_s: list[float], hr: list[float] | None = None) -> pd.DataFrame:
    n = len(times_s)
    return pd.DataFrame(
        {
            "patient_id": ["P1"] * n,
            "device_id": ["D1"] * n,
            "event_time": [BASE + pd.Timedelta(seconds=t) for t in times_s],
            "hr": hr if hr is not None else [80.0] * n,
            "spo2": [97.0] * n,
        }
    )


# --------------------------------------------------------------------------- settings


def test_the_configured_checks_reach_every_job():
    settings = Settings.from_config(vsconfig.load_config())
    assert settings.checks == MessageChecks(
        event_time_max_ahead_s=300, event_time_max_behind_s=None, patient_id_max_length=64
    )
    # A job built without a configuration checks as a run does.
    assert JobSpec("b", "t", Path("o"), window_s=60, watermark_s=10).checks == settings.checks
    condition = next(iter(settings.runs.values())).condition
    where = {"bootstrap_servers": "b", "topic": "t", "out_dir": Path("o")}
    live = MessageChecks(event_time_max_behind_s=86_400)
    spec = JobSpec.from_condition(
        condition, settings.diagnostics, alerts_topic=None, raw_events=False, checks=live, **where
    )
    assert (spec.checks.max_ahead_ms, spec.checks.max_behind_ms) == (300_000, 86_400_000)


def test_synthetic_load_keeps_every_check_but_the_clock_band():
    checks = MessageChecks(event_time_max_behind_s=86_400, patient_id_max_length=8)
    loose = checks.without_clock_band()
    assert (loose.max_ahead_ms, loose.max_behind_ms, loose.patient_id_max_length) == (None, None, 8)


def test_checks_of_the_wrong_type_or_unknown_are_refused():
    with pytest.raises(SettingsError, match="checks/patient_id_max_length"):
        MessageChecks.from_config({"patient_id_max_length": "long"})
    config = vsconfig.load_config()
    config["checks"]["event_time_max_ahed_s"] = 300
    with pytest.raises(ConfigError, match="checks"):
        vsconfig.validate(config)


# --------------------------------------------------------------------------- the reference


def test_the_reference_drops_repeated_readings_and_counts_them(tmp_path):
    events = _events([0, 10, 10, 20, 20, 20, 70], hr=[80, 160, 160, 90, 90, 90, 100])
    diagnostics = DiagnosticsSpec(reading_rules=(CRITICAL,))
    result = reference.compute(events, diagnostics, 60)
    assert result["duplicates"] == 3
    assert result["windows"]["n"].tolist() == [3, 1]
    # One reading alert for the repeated critical reading, not two.
    assert result["alerts"]["rule"].tolist() == ["critical_tachycardia"]
    # The count travels with windows.parquet, for the validation.
    result["windows"].to_parquet(tmp_path / "windows.parquet")
    assert pd.read_parquet(tmp_path / "windows.parquet").attrs["duplicates"] == 3


def test_a_repeat_from_another_device_or_time_is_a_reading():
    events = pd.concat([_events([0, 1]), _events([0]).assign(device_id="D2")], ignore_index=True)
    result = reference.compute(events, DiagnosticsSpec(), 60)
    assert result["duplicates"] == 0 and result["windows"]["n"].tolist() == [3]


def test_the_reference_applies_the_streams_id_length():
    events = _events([0, 1])
    events.loc[1, "patient_id"] = "P" * 9
    result = reference.compute(
        events, DiagnosticsSpec(), 60, checks=MessageChecks(patient_id_max_length=8)
    )
    assert result["quarantined"]["reason"].tolist() == ["too_long:patient_id"]


# --------------------------------------------------------------------------- metrics


def test_dropped_duplicates_reads_the_dedup_operators_custom_metric():
    # As Spark 4.2 reports it: operator dedupeWithinWatermark, metric numDroppedDuplicateRows.
    def batch(duplicates: int) -> dict:
        dedup = {
            "operatorName": "dedupeWithinWatermark",
            "numRowsDroppedByWatermark": 1,
            "customMetrics": {"numDroppedDuplicateRows": duplicates, "loadedMapCacheHitCount": 4},
        }
        aggregate = {"operatorName": "stateStoreSave", "customMetrics": {}}
        return {"stateOperators": [aggregate, dedup]}

    assert metrics.dropped_duplicates([batch(3), batch(0), {}, batch(2)]) == 5
    assert metrics.DROPPED_DUPLICATES_METRIC == "numDroppedDuplicateRows"


# --------------------------------------------------------------------------- validation


def _validate(tmp_path: Path, events: pd.DataFrame, kept: list[int], duplicates: int) -> dict:
    """The validation of a stream that counted the readings ``kept`` (positions in
    ``events``) in its windows and ``duplicates`` as duplicates; the rest it dropped late."""
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    ref = reference.compute(events, DiagnosticsSpec(), 60)
    ref_dir.mkdir(parents=True)
    ref["windows"].to_parquet(ref_dir / "windows.parquet")
    ref["alerts"].to_parquet(ref_dir / "alerts.parquet")
    stream = reference.compute(events.iloc[kept], DiagnosticsSpec(), 60)["windows"]
    (run_dir / "windows" / "batch_id=0").mkdir(parents=True)
    stream.to_parquet(run_dir / "windows" / "batch_id=0" / "part.parquet")
    processed = len(events)
    run_metrics = {
        "dropped_duplicates": duplicates,
        "dropped_by_watermark": processed - duplicates - int(stream["n"].sum()),
        "dropped_state_rows": 0,
        "events_processed": processed,
        "quarantined": 0,
    }
    (run_dir / "metrics.json").write_text(json.dumps(run_metrics))
    return validation.validate_run(run_dir, ref_dir)


def test_a_repeat_behind_the_watermark_is_not_a_missing_event(tmp_path):
    # Readings at 0, 10, 20 s and a repeat of the one at 20 s that arrived behind the
    # watermark: the stream kept the original and dropped the repeat as late, not as a
    # duplicate. No event is missing, one row was dropped late.
    events = _events([0, 10, 20, 20])
    check = _validate(tmp_path, events, kept=[0, 1, 2], duplicates=0)
    assert (check["events_missing"], check["dropped_by_watermark"]) == (0, 1)
    assert check["late_duplicates"] == 1
    assert check["missing_equals_dropped"]


def test_a_late_reading_and_its_late_repeat_are_one_missing_event(tmp_path):
    events = _events([0, 10, 20, 20, 30, 30])
    # 20 s and its repeat both late; 30 s kept, its repeat dropped as a duplicate.
    check = _validate(tmp_path, events, kept=[0, 1, 4], duplicates=1)
    assert (check["events_missing"], check["dropped_by_watermark"]) == (1, 2)
    assert check["late_duplicates"] == 1
    assert check["missing_equals_dropped"]


def test_the_validation_table_shows_the_late_repeats(tmp_path):
    check = _validate(tmp_path, _events([0, 10, 20, 20]), kept=[0, 1, 2], duplicates=0)
    check.update(windows_stream=1, alerts_extra=0)
    text, values = validation.table({"late": check})
    assert r"Of them, late repeats of counted readings & \num{1}" in text
    assert values["ValidationLateLateDuplicates"]["value"] == 1
    assert values["ValidationLateDuplicates"]["value"] == 0
