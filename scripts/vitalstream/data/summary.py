"""The Data section's summary of the raw data: what the data notebook needs, in small files.

The cohort the experiments replay and the PhysioNet conversions are large (hundreds of MB at
full size); the Data section needs only a few numbers from them, the realism check and three
example trajectories. ``data-summary`` reads the raw tables once and writes

* ``realism.json``: the realism check (:func:`vitalstream.data.realism.compare`),
* ``data_summary.json``: per source its size, validity, prevalence, missingness, vitals recorded
  and sampling interval; the cohort's artefact shares, delays, clock skew, onsets and ramps;
  the example patients and the BIDMC quarantine detail,
* ``trajectories.parquet``: the example patients' readings, on the time axes the figure uses,

so that notebooks/data_overview.ipynb (and a rebuild from a results archive) runs from these
small files alone.

Not for: tables, figures or wording (the notebook) and the realism check's definition
(vitalstream.data.realism).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core import schema
from vitalstream.core.cliargs import existing_dir, parquet_input, writable_file
from vitalstream.data import realism
from vitalstream.data.mirror import SOURCES

# The vitals the trajectories figure shows, and the columns it needs besides them.
TRAJECTORY_VITALS = ("hr", "spo2", "sbp", "rr", "temp")
ARTEFACTS = ("missing", "motion_spike", "flatline", "impossible", "duplicate")


def _number(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def describe_source(events: pd.DataFrame) -> dict[str, Any]:
    """What the cohort table says about a source's valid rows."""
    return {
        "missing": _number(realism.missing_share(events)),
        "vitals": len(realism.recorded_vitals(events)),
        "interval_s": _number(realism.median_interval_s(events)),
    }


def describe_cohort(events: pd.DataFrame, labels: pd.DataFrame) -> dict[str, Any]:
    """The synthetic cohort: size, validity, outcome, artefacts, delays, onsets, ramps."""
    valid, quarantined = schema.validate_events(events)
    start = valid["event_time"].min()
    deteriorating = labels[labels["deteriorates"].astype(bool)]
    onset_min = (deteriorating["onset_time"] - start).dt.total_seconds() / 60
    shares = events["artefact"].value_counts(normalize=True)
    span_s = (events["event_time"].max() - events["event_time"].min()).total_seconds()
    return {
        "patients": len(labels),
        "rows": len(events),
        "valid_rows": len(valid),
        "quarantined": len(quarantined),
        "prevalence": float(labels["deteriorates"].mean()),
        "deteriorating": int(labels["deteriorates"].sum()),
        **describe_source(valid),
        "span_s": span_s,
        "start": start.isoformat(),
        "ramp_minutes_median": float(deteriorating["ramp_minutes"].median())
        if len(deteriorating)
        else 0.0,
        "onset_minutes_min": _number(float(onset_min.min())),
        "onset_minutes_max": _number(float(onset_min.max())),
        "artefact_share": {a: float(shares.get(a, 0.0)) for a in ARTEFACTS}
        | {"any": float(1 - shares.get("none", 0.0))},
        "network_delay_ms_mean": float(events["network_delay_ms"].mean()),
        "clock_skew_ms_sd": float(
            events.groupby("patient_id")["clock_skew_ms"].first().std(ddof=0)
        ),
    }


def trajectories(
    events: pd.DataFrame, labels: pd.DataFrame, seta: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The figure's example patients (chosen by rule, realism.first_patient): a deteriorating
    and a stable synthetic patient in minutes of stay, a septic set-A patient in hours in ICU."""
    valid, _ = schema.validate_events(events)
    det_id = realism.first_patient(labels, True, valid)
    stable_id = realism.first_patient(labels, False, valid)
    septic_id = realism.first_patient(seta["labels"], True, seta["events"])
    start = valid["event_time"].min()
    by_id = labels.set_index("patient_id")
    frames, examples = [], {}
    for panel, pid in (("deteriorating", det_id), ("stable", stable_id)):
        rows = valid[valid["patient_id"] == pid].sort_values("event_time")
        true_time = rows["event_time"] - pd.to_timedelta(rows["clock_skew_ms"], unit="ms")
        frames.append(
            rows[[*TRAJECTORY_VITALS, "artefact"]].assign(
                panel=panel, patient_id=pid, time=(true_time - start).dt.total_seconds() / 60.0
            )
        )
        onset = by_id.loc[pid, "onset_time"]
        examples[panel] = {
            "patient_id": pid,
            "onset": None if pd.isna(onset) else (onset - start).total_seconds() / 60.0,
            "ramp_minutes": float(by_id.loc[pid, "ramp_minutes"]),
            "time_unit": "minutes of stay",
        }
    set_a_start = pd.Timestamp(seta["summary"]["start"])
    rows = seta["events"][seta["events"]["patient_id"] == septic_id].sort_values("event_time")
    frames.append(
        rows[list(TRAJECTORY_VITALS)].assign(
            artefact="none",
            panel="septic",
            patient_id=septic_id,
            time=(rows["event_time"] - set_a_start).dt.total_seconds() / 3600.0,
        )
    )
    onset = seta["labels"].set_index("patient_id").loc[septic_id, "onset_time"]
    examples["septic"] = {
        "patient_id": septic_id,
        "onset": (onset - set_a_start).total_seconds() / 3600.0,
        "time_unit": "hours in ICU",
    }
    columns = ["panel", "patient_id", "time", *TRAJECTORY_VITALS, "artefact"]
    frame = pd.concat(frames, ignore_index=True)[columns]
    return frame, examples


def summarise(
    cohort_events: Path,
    cohort_labels: Path,
    physionet_dir: Path,
    sources: Sequence[str],
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    """(data summary, realism check, trajectories) from the raw tables."""
    if "sepsis2019" not in sources:
        raise ValueError("the realism check needs PhysioNet 2019 set A (source sepsis2019)")
    events, labels = pd.read_parquet(cohort_events), pd.read_parquet(cohort_labels)
    real: dict[str, dict[str, Any]] = {}
    for name in sources:
        folder = physionet_dir / name
        real[name] = {
            "events": pd.read_parquet(folder / "events.parquet"),
            "labels": pd.read_parquet(folder / "labels.parquet"),
            "summary": json.loads((folder / "summary.json").read_text()),
        }
    check = realism.compare(events, labels, real["sepsis2019"]["events"])
    check["synthetic"]["events"] = str(cohort_events)
    check["reference"]["events"] = str(physionet_dir / "sepsis2019" / "events.parquet")
    frame, examples = trajectories(events, labels, real["sepsis2019"])
    summary: dict[str, Any] = {
        "cohort": {
            "events": str(cohort_events),
            "labels": str(cohort_labels),
            **describe_cohort(events, labels),
        },
        "sources": {
            name: {"dir": str(physionet_dir / name), **describe_source(r["events"])}
            for name, r in real.items()
        },
        "examples": examples,
    }
    if "bidmc" in real:
        quarantine = pd.read_parquet(physionet_dir / "bidmc" / "quarantine.parquet", columns=["rr"])
        summary["sources"]["bidmc"]["quarantined_rr_zero"] = int((quarantine["rr"] == 0).sum())
    return summary, check, frame


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data-summary", help="summarise the cohort and PhysioNet tables for the Data section"
    )
    parser.add_argument("--cohort-events", type=parquet_input, required=True)
    parser.add_argument("--cohort-labels", type=parquet_input, required=True)
    parser.add_argument("--physionet-dir", type=existing_dir, required=True)
    parser.add_argument(
        "--sources", type=_cli_sources, required=True, help="comma-separated PhysioNet sources"
    )
    parser.add_argument("--summary-json", type=writable_file, required=True)
    parser.add_argument("--realism-json", type=writable_file, required=True)
    parser.add_argument("--trajectories", type=writable_file, required=True)
    parser.set_defaults(func=_cli)


def _cli_sources(text: str) -> list[str]:
    """Known PhysioNet sources, comma-separated; the realism check needs sepsis2019."""
    sources = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}"
        )
    if "sepsis2019" not in sources:
        raise argparse.ArgumentTypeError("must include sepsis2019 (the realism check needs it)")
    return sources


def _cli(args: argparse.Namespace) -> int:
    sources = args.sources
    summary, check, frame = summarise(
        args.cohort_events, args.cohort_labels, args.physionet_dir, sources
    )
    for path in (args.summary_json, args.realism_json, args.trajectories):
        path.parent.mkdir(parents=True, exist_ok=True)
    args.summary_json.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    args.realism_json.write_text(json.dumps(check, indent=2, sort_keys=True) + "\n")
    frame.to_parquet(args.trajectories, index=False)
    print(json.dumps({"summary": str(args.summary_json), "trajectory_rows": len(frame)}))
    return 0
