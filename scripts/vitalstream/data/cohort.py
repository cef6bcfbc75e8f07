"""Seeded, vectorised synthetic cohort of monitored patients (events + ground-truth labels).

What it is for: producing the vital-sign event stream the experiments replay through Kafka and
score in Spark, with every effect that matters for stream analytics labelled as ground truth:
sepsis-like deterioration (onset time in the label table), benign transient desaturations,
device artefacts (``artefact`` column), device clock skew (``clock_skew_ms``) and network delay
(``network_delay_ms``). Same :class:`CohortParams` → identical frames and byte-identical files.
This module assembles the rows and labels, writes the files and holds the ``cohort`` command;
the parts live beside it:

* :mod:`vitalstream.data.cohortparams`: :class:`CohortParams`, validated once;
* :mod:`vitalstream.data.physiology`: patients and their clean vitals (the calibrated model);
* :mod:`vitalstream.data.artefacts`: device artefacts and network delay.

The model's constants are importable from here too (the Data notebook reads them as
``cohort.NOISE`` and so on).

What it is not: a physiological simulator fit for clinical conclusions (the model is a few
additive, calibrated components; oxygen therapy does not raise SpO2, for example), nor a
replayer: it only *annotates* delay and lateness, it never reorders rows by arrival.

Signal model per patient and vital (``(time, patient)`` arrays, all numpy):

    value = baseline(age, sex) + circadian + coupling·stress + OU noise
            + deterioration(t) + benign desaturation (SpO2) [+ fever → HR coupling]

rounded as a monitor displays it (:data:`vitalstream.core.schema.DISPLAY_DECIMALS`), then device
artefacts are applied. One artefact label per row; when effects collide on a reading the
precedence is ``impossible > missing > flatline > motion_spike > none``; ``duplicate`` rows are
extra copies of clean (``none``) readings.

Time: readings sit on a grid of ``sample_period_s`` from ``start`` (true time). ``event_time`` is
true time plus the device's constant ``clock_skew_ms``; the label ``onset_time`` is in true time.
``network_delay_ms`` is drawn per message (a duplicate draws its own, as a resend travels
separately), so arrival at the gateway = true time + delay. Motion spikes last 1–3 *samples*;
flat-lines (20–40 s) and benign dips (20–60 s) are timed in seconds.

Random sub-streams come from ``SeedSequence(seed).spawn``, one per effect (see
:data:`STREAMS`), so changing one effect's rate does not move any other effect.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core import schema
from vitalstream.core.cliargs import (
    UsageError,
    check_fits_in_memory,
    existing_file,
    int_at_most,
    nonnegative_int,
    positive_float,
    writable_dir,
)
from vitalstream.core.schema import ARTEFACTS, CONSCIOUSNESS_LEVELS, VITAL_NAMES
from vitalstream.data.artefacts import (
    ARTEFACT_CODES,
    FLATLINE_SECONDS,
    MOTION_SPIKE_BPM,
    MOTION_SPIKE_SAMPLES,
    apply_artefacts,
    network_delays,
    sparse_positions,
)
from vitalstream.data.canonical import sha256_file, start_ms, write_parquet
from vitalstream.data.cohortparams import CohortParams
from vitalstream.data.physiology import (
    CIRCADIAN_ACROPHASE_H,
    CIRCADIAN_AMPLITUDE,
    DESATURATION_DEPTH,
    DETERIORATION_RANGE,
    FEVER_HR_BPM_PER_C,
    HYPOTHERMIA_SHARE,
    NOISE,
    STRESS_LOADING,
    STRESS_TAU_S,
    Patients,
    clean_vitals,
    clinical_context,
    draw_patients,
)

# Public names of the generator. Some are defined beside it and imported from here by their
# callers: CohortParams, and the model constants the Data notebook quotes (generator table,
# macros).
__all__ = [
    "CIRCADIAN_ACROPHASE_H",
    "CIRCADIAN_AMPLITUDE",
    "DESATURATION_DEPTH",
    "DETERIORATION_RANGE",
    "FEVER_HR_BPM_PER_C",
    "FLATLINE_SECONDS",
    "HYPOTHERMIA_SHARE",
    "MOTION_SPIKE_BPM",
    "MOTION_SPIKE_SAMPLES",
    "NOISE",
    "STREAMS",
    "STRESS_LOADING",
    "STRESS_TAU_S",
    "Cohort",
    "CohortParams",
    "generate_cohort",
    "params_from_args",
    "register_cli",
    "run_cli",
    "write_cohort",
]

# Append-only: each name is one independent random sub-stream (SeedSequence.spawn order).
STREAMS: tuple[str, ...] = (
    "demographics",
    "baseline",
    "circadian",
    "stress",
    *(f"noise_{v}" for v in ("hr", "spo2", "sbp", "dbp", "rr", "temp")),
    "deterioration",
    "desaturation",
    "motion_spike",
    "flatline",
    "missing",
    "impossible",
    "duplicate",
    "clock_skew",
    "network_delay",
    "very_late",
    "devices",
    "interventions",
)


@dataclass(frozen=True)
class Cohort:
    """A generated cohort: events (``EVENT_COLUMNS``) and labels (``LABEL_COLUMNS``)."""

    params: CohortParams
    events: pd.DataFrame
    labels: pd.DataFrame

    @property
    def deteriorating_patients(self) -> int:
        return int(self.labels["deteriorates"].sum())


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }


def _string_array(
    categories: Sequence[str], codes: np.ndarray, null: np.ndarray | None = None
) -> pd.api.extensions.ExtensionArray:
    """Canonical string column of ``categories[codes]``, null where ``null`` is set."""
    values = np.asarray(categories, dtype=object)[codes]
    if null is not None and null.any():
        values[null] = None
    return pd.array(values, dtype=schema.STRING_DTYPE)


def generate_cohort(params: CohortParams) -> Cohort:
    """Generate events and labels for ``params`` (deterministic in ``params``)."""
    p = params
    rng = _streams(p.seed)
    pt = draw_patients(p, rng)
    vitals, progress = clean_vitals(p, pt, rng)
    o2, level = clinical_context(p, pt, progress, rng["interventions"])
    label, all_missing = apply_artefacts(p, vitals, rng)

    n_time, n_pat = p.samples_per_patient, p.patients
    n = n_time * n_pat
    patient = np.tile(np.arange(n_pat, dtype=np.int64), n_time)
    true_ms = np.round(np.arange(n_time) * p.sample_period_s * 1000.0).astype(np.int64)
    skew_ms = np.round(rng["clock_skew"].normal(0.0, 1.0, n_pat) * p.clock_skew_ms_sd)
    skew_ms = skew_ms.astype(np.int64)
    event_ms = (true_ms[:, None] + skew_ms[None, :]).reshape(-1)
    delay_ms = network_delays(p, n, rng["network_delay"], rng["very_late"])

    # Duplicates: extra copies of clean readings; a resent message travels with its own delay.
    r = rng["duplicate"]
    dup = sparse_positions(r, n, p.duplicate_rate)
    dup = dup[label[dup] == ARTEFACT_CODES["none"]]
    rows = np.concatenate([np.arange(n), dup])
    row_label = np.concatenate([label, np.full(len(dup), ARTEFACT_CODES["duplicate"])])
    row_delay = np.concatenate([delay_ms, network_delays(p, len(dup), r, r)])

    # Sort by (event_time, patient); stable, so an original precedes its duplicate.
    key = event_ms[rows] * n_pat + patient[rows]
    if len(dup) or np.any(key[1:] < key[:-1]):
        order = np.argsort(key, kind="stable")
        rows, row_label, row_delay = rows[order], row_label[order], row_delay[order]

    pat = patient[rows]
    null_ctx = all_missing[rows]
    o2_values = o2.reshape(-1)[rows]
    columns: dict[str, Any] = {
        "patient_id": _string_array(_patient_ids(n_pat), pat),
        "device_id": _string_array(_device_ids(pt.device_number), pat),
        "event_time": schema.timestamps_from_ms(event_ms[rows] + start_ms(p.start)),
    }
    columns.update({name: vitals[name].reshape(-1)[rows] for name in VITAL_NAMES})
    columns["o2_supplemental"] = pd.arrays.BooleanArray(o2_values, null_ctx.copy())
    columns["consciousness"] = _string_array(
        CONSCIOUSNESS_LEVELS, level.reshape(-1)[rows], null_ctx
    )
    columns["artefact"] = _string_array(ARTEFACTS, row_label)
    columns["clock_skew_ms"] = skew_ms[pat]
    columns["network_delay_ms"] = row_delay
    events = pd.DataFrame(columns, copy=False)  # no copy: the arrays are fresh
    return Cohort(p, events, _labels(p, pt))


def _patient_ids(n: int) -> list[str]:
    return [f"P{i:06d}" for i in range(1, n + 1)]


def _device_ids(numbers: np.ndarray) -> list[str]:
    return [f"D{int(i):06d}" for i in numbers]


def _labels(p: CohortParams, pt: Patients) -> pd.DataFrame:
    onset_ms = np.where(pt.deteriorates, np.nan_to_num(pt.onset_s) * 1000.0, 0.0)
    onset = schema.timestamps_from_ms(np.round(onset_ms).astype(np.int64) + start_ms(p.start))
    labels = pd.DataFrame(
        {
            "patient_id": pd.array(_patient_ids(p.patients), dtype=schema.STRING_DTYPE),
            "age": pt.age,
            "sex": pd.array(np.where(pt.female, "F", "M"), dtype=schema.STRING_DTYPE),
            "deteriorates": pt.deteriorates,
            "onset_time": onset.where(pt.deteriorates, pd.NaT),
            "ramp_minutes": np.where(pt.deteriorates, p.ramp_minutes, np.nan),
            "source": pd.array(["synthetic"] * p.patients, dtype=schema.STRING_DTYPE),
        }
    )
    return labels.astype(schema.LABEL_DTYPES)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def write_cohort(cohort: Cohort, out_dir: Path) -> dict[str, Path]:
    """Write ``events.parquet`` and ``labels.parquet`` (byte-deterministic) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"events": out_dir / "events.parquet", "labels": out_dir / "labels.parquet"}
    write_parquet(cohort.events, schema.event_arrow_schema(), paths["events"])
    write_parquet(cohort.labels, schema.label_arrow_schema(), paths["labels"])
    return paths


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


# Peak memory of generate + write per event row, measured with ru_maxrss (310-440 B/row for
# 0.7-2.9 M rows) and rounded up, so the CLI can refuse a cohort the machine cannot hold
# before numpy tries (``--hours 1e9`` would otherwise ask for tebibytes and die).
COHORT_BYTES_PER_ROW = 500
# Ids are "P" + 6 digits (CohortParams checks it too; the CLI says so at parse time).
MAX_PATIENTS = 999_999


def params_from_args(args: argparse.Namespace) -> CohortParams:
    """Defaults < ``--config`` file < ``--param`` pairs < explicit flags.

    A bad file or value raises :class:`UsageError` (one line, exit 2), since it is the
    command line's fault, not a bug.
    """
    mapping: dict[str, Any] = {}
    if args.config:
        mapping.update(_cli_config(args.config))
    for item in args.param or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"argument --param: expects KEY=VALUE, got {item!r}")
        mapping[key.strip()] = _cli_value(item, value)
    for key in ("patients", "hours", "seed"):
        if getattr(args, key) is not None:
            mapping[key] = getattr(args, key)
    try:
        params = CohortParams.from_mapping(mapping)
    except ValueError as exc:
        raise UsageError(f"arguments --param/--config: {exc}") from None
    _cli_check_memory(params)
    return params


def _cli_config(path: Path) -> Mapping[str, Any]:
    import yaml  # lazy: only the CLI needs it

    try:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"argument --config: cannot read {path}: {first}") from None
    if not isinstance(loaded, Mapping):
        raise UsageError(f"argument --config: {path}: expected a mapping of CohortParams fields")
    return loaded


def _cli_value(item: str, text: str) -> Any:
    import yaml  # lazy: only the CLI needs it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise UsageError(f"argument --param: {item!r}: the value is not YAML") from None


def _cli_check_memory(p: CohortParams) -> None:
    """Refuse a cohort larger than the memory before a single array is allocated."""
    per_hour = 3600.0 / p.sample_period_s
    rows = float(p.patients) * p.hours * per_hour * (1.0 + p.duplicate_rate)
    check_fits_in_memory(
        "arguments --patients/--hours",
        rows,
        COHORT_BYTES_PER_ROW,
        f"{p.patients} patients × {p.hours:g} h × {per_hour:g} readings/h",
    )


def run_cli(args: argparse.Namespace) -> int:
    """Generate, write and print one JSON summary line."""
    params = params_from_args(args)
    t0 = time.perf_counter()
    cohort = generate_cohort(params)
    seconds = time.perf_counter() - t0
    paths = write_cohort(cohort, Path(args.out))
    write_seconds = time.perf_counter() - t0 - seconds
    summary = {
        "patients": params.patients,
        "readings": len(cohort.events),
        "deteriorating_patients": cohort.deteriorating_patients,
        "seconds": round(seconds, 3),
        "readings_per_s": round(len(cohort.events) / seconds),
        "write_seconds": round(write_seconds, 3),
        "files": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in paths.items()},
    }
    print(json.dumps(summary))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``cohort`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "cohort",
        help="generate a synthetic cohort (events.parquet, labels.parquet)",
        description="Generate a seeded synthetic cohort and write it as Parquet.",
    )
    parser.add_argument(
        "--patients", type=int_at_most(MAX_PATIENTS), default=None, help="number of patients"
    )
    parser.add_argument("--hours", type=positive_float, default=None, help="stay length, hours")
    parser.add_argument("--seed", type=nonnegative_int, default=None, help="root random seed")
    parser.add_argument("--out", required=True, type=writable_dir, help="output directory")
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="any other CohortParams field (YAML value), repeatable",
    )
    parser.add_argument(
        "--config", type=existing_file, help="YAML file with a mapping of CohortParams"
    )
    parser.set_defaults(func=run_cli)
