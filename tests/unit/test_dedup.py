"""vitalstream.sinks.dedup: a duplicated reading's alert is written once, within a batch, across
batches, after a restart, and a replayed batch does not drop its own alerts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from vitalstream.core.diagnostics import alert_id
from vitalstream.sinks.dedup import SeenAlerts

HORIZON_MS = 120_000


def _alerts(patient: str, minutes: list[float]) -> pd.DataFrame:
    times = pd.Timestamp("2026-01-01 08:00", tz="UTC") + pd.to_timedelta(minutes, unit="min")
    ms = times.astype("datetime64[ms, UTC]").astype("int64")
    return pd.DataFrame(
        {
            "alert_id": [alert_id(patient, "critical_desaturation", int(t)) for t in ms],
            "patient_id": patient,
            "rule": "critical_desaturation",
            "time": times,
        }
    )


def test_a_repeat_within_a_batch_is_dropped_and_counted(tmp_path: Path) -> None:
    seen = SeenAlerts(tmp_path, HORIZON_MS)
    kept, dropped = seen.first_written(_alerts("P1", [0, 0, 1]), batch_id=0)
    assert dropped == 1
    assert kept["alert_id"].is_unique and len(kept) == 2


def test_a_repeat_in_a_later_batch_is_dropped_even_after_a_restart(tmp_path: Path) -> None:
    seen = SeenAlerts(tmp_path, HORIZON_MS)
    seen.restore(0)
    first = _alerts("P1", [0, 1])
    seen.first_written(first, batch_id=0)
    seen.save(0, ["P1"])
    # A new process: the state comes back from the saved batches before the one it runs.
    restarted = SeenAlerts(tmp_path, HORIZON_MS)
    restarted.restore(1)
    kept, dropped = restarted.first_written(_alerts("P1", [1, 2]), batch_id=1)
    assert dropped == 1
    assert kept["alert_id"].tolist() == _alerts("P1", [2])["alert_id"].tolist()


def test_a_replayed_batch_keeps_its_own_alerts(tmp_path: Path) -> None:
    """Batch 1 failed after recording its ids (e.g. the alerts topic was away) and runs again,
    in the same process or a restarted one: its alerts are not its own duplicates."""
    seen = SeenAlerts(tmp_path, HORIZON_MS)
    batch = _alerts("P1", [3, 4])
    seen.first_written(batch, batch_id=1)
    seen.save(1, ["P1"])
    kept, dropped = seen.first_written(batch, batch_id=1)
    assert (len(kept), dropped) == (2, 0)
    restarted = SeenAlerts(tmp_path, HORIZON_MS)
    restarted.restore(1)
    assert restarted.first_written(batch, batch_id=1)[1] == 0


def test_ids_older_than_the_horizon_are_forgotten(tmp_path: Path) -> None:
    seen = SeenAlerts(tmp_path, HORIZON_MS)
    seen.first_written(_alerts("P1", [0]), batch_id=0)
    seen.first_written(_alerts("P1", [10]), batch_id=1)
    assert len(seen.patients["P1"]) == 1
    # Another patient's alert with the same time is another alert.
    kept, dropped = seen.first_written(_alerts("P2", [10]), batch_id=2)
    assert (len(kept), dropped) == (1, 0)
