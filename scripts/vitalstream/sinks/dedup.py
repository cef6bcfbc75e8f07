"""Reading alerts already written: a duplicated reading must not alert twice.

The per-reading query is stateless, so a reading delivered twice (same patient, device and
event time: a retrying device or gateway; the cohort generator injects them) fires its rule
twice, and both rows carry the same deterministic ``alert_id``. Written twice, the repeat
would be a second row in Parquet, a second message on the alerts topic, a collision in the
index, and a second visit to suppression (which would mark it suppressed, inflating the raw
alert count). :class:`SeenAlerts` keeps, per patient, the alert ids written within a horizon
of event time (the watermark: a repeat later than that is as late as a reading the windows
drop) and the batch that first wrote each, saved per batch like the sinks' other state
(``state/<query>/batch_id=<n>.json``), so a restarted job rebuilds it and a replayed batch does
not mistake its own earlier attempt for a duplicate.

Not for: the windows query, whose state deduplicates there (vitalstream.stream).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd


class SeenAlerts:
    """Per patient: alert id → (event time in ms, the batch that first wrote it)."""

    def __init__(self, directory: Path, horizon_ms: int) -> None:
        self.directory = directory
        self.horizon_ms = horizon_ms
        self.patients: dict[str, dict[str, tuple[int, int]]] = {}
        self._restored = False

    def restore(self, before_batch: int) -> None:
        """Rebuild from the batches saved before ``before_batch`` (once per process)."""
        if self._restored:
            return
        self._restored = True
        for path in sorted(self.directory.glob("batch_id=*.json"), key=_batch_of):
            if _batch_of(path) >= before_batch:
                break
            for pid, seen in json.loads(path.read_text()).items():
                self.patients[pid] = {a: (int(t), int(b)) for a, (t, b) in seen.items()}

    def first_written(self, alerts: pd.DataFrame, batch_id: int) -> tuple[pd.DataFrame, int]:
        """The rows of ``alerts`` whose id no earlier row or earlier batch wrote, and how
        many were dropped; records the kept ids as written by ``batch_id``.

        An id recorded by this batch or a later one (an earlier attempt of a replayed batch)
        does not count: the replay writes it again."""
        if alerts.empty:
            return alerts, 0
        times = alerts["time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        keep = []
        for pid, aid, t in zip(alerts["patient_id"].astype(str), alerts["alert_id"], times,
                               strict=True):  # fmt: skip
            seen = self.patients.setdefault(pid, {})
            earlier = seen.get(aid)
            fresh = earlier is None or earlier[1] >= batch_id
            if fresh:
                seen[aid] = (int(t), batch_id)
            keep.append(fresh)
        # A repeat within this batch: the first row recorded it with this batch's id.
        mask = pd.Series(keep, index=alerts.index) & ~alerts["alert_id"].duplicated()
        kept = alerts.loc[mask].reset_index(drop=True)
        self._prune(alerts["patient_id"].astype(str).unique())
        return kept, int((~mask).sum())

    def _prune(self, patients: Iterable[str]) -> None:
        """Forget ids older than the horizon behind each patient's latest alert."""
        for pid in patients:
            seen = self.patients.get(pid, {})
            if not seen:
                continue
            oldest = max(t for t, _ in seen.values()) - self.horizon_ms
            self.patients[pid] = {a: v for a, v in seen.items() if v[0] >= oldest}

    def save(self, batch_id: int, touched: Iterable[str]) -> None:
        """Write the touched patients' ids (replacing an earlier attempt of the batch)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {pid: self.patients[pid] for pid in sorted(set(touched)) if pid in self.patients}
        tmp = self.directory / f"batch_id={batch_id}.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.directory / f"batch_id={batch_id}.json")


def _batch_of(path: Path) -> int:
    return int(path.stem.split("=")[1])
