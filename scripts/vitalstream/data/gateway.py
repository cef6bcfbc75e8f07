"""Edge gateways (the blueprint's hierarchical architecture, RQ2): what reaches Kafka when a
gateway in front of each group of devices reduces their readings before sending.

A gateway serves ``group_size`` devices (in device-id order) and runs one Kafka producer, so the
replay sends each gateway's messages through a producer of its own (``gateway_id`` column;
vitalstream.ingest.producer) and batching and compression happen per gateway, as they would on site.
Three modes:

* ``forward``: every reading as it is (the reference condition of RQ2: same gateways, same
  producers, nothing removed);
* ``coalesce`` every ``seconds``: one message per device and bucket of ``seconds`` of the
  device's clock (buckets aligned to the epoch, so a bucket never straddles a window whose
  length it divides). Each vital is the mean of the bucket's valid readings, rounded as the
  monitor displays it (a value like any other reading, and no float noise for the window
  means downstream); oxygen is "any", consciousness the worst level. The
  message carries the event time of the bucket's last reading and leaves the gateway when the
  bucket ends (or when its last reading arrived, if later);
* ``sample`` 1 in ``every``: every ``every``-th reading of each device, in event-time order, from
  a device-specific phase (so that not all devices report in the same second).

Bad input is never averaged in silently: a vital outside the schema's valid range
(vitalstream.core.schema) is left out of the mean and counted (``excluded_out_of_range``); exact
duplicates (same device and event time) count once (``duplicates_merged``); a bucket whose vital
has no valid reading carries null for it. Sampling forwards readings as they are, faults
included: the job's dead letter sees them as it would without the gateway.

Not for: lateness (RQ3 varies the cohort's network delay; RQ2's cohort is delivered in order),
or deciding how accurate the reduced stream is (vitalstream.measure.accuracy).
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core.cliargs import (
    checked,
    json_argument,
    parquet_input,
    writable_file,
)
from vitalstream.core.schema import CONSCIOUSNESS_LEVELS, DISPLAY_DECIMALS, VITAL_NAMES, valid_range

MODES = ("forward", "coalesce", "sample")


@dataclass(frozen=True)
class GatewaySpec:
    """A condition's ``gateway`` block."""

    mode: str = "forward"
    group_size: int = 100
    seconds: float | None = None
    every: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"gateway mode must be one of {MODES}, not {self.mode!r}")
        if self.group_size < 1:
            raise ValueError("gateway group_size must be at least 1")
        if self.mode == "coalesce" and not (self.seconds and self.seconds > 0):
            raise ValueError("gateway mode coalesce needs seconds > 0")
        if self.mode == "sample" and not (self.every and self.every >= 1):
            raise ValueError("gateway mode sample needs every >= 1")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> GatewaySpec:
        unknown = set(values or {}) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown gateway settings: {sorted(unknown)}")
        return cls(**dict(values or {}))


@dataclass
class GatewayReport:
    """What the gateways did to the stream (written beside the reduced events)."""

    spec: dict[str, Any]
    devices: int = 0
    gateways: int = 0
    readings_in: int = 0
    messages_out: int = 0
    excluded_out_of_range: int = 0
    duplicates_merged: int = 0


def _epoch_ms(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(times, utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy()


def assign_gateways(events: pd.DataFrame, group_size: int) -> np.ndarray:
    """Gateway of each row: devices in id order, ``group_size`` to a gateway."""
    devices = np.sort(events["device_id"].astype(str).unique())
    index = pd.Index(devices).get_indexer(events["device_id"].astype(str))
    return (index // group_size).astype(np.int32)


def _valid_vitals(events: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Vitals with out-of-range values set to null, and how many were."""
    vitals = events[list(VITAL_NAMES)].astype("float64")
    excluded = 0
    for name in VITAL_NAMES:
        low, high = valid_range(name)
        bad = vitals[name].notna() & ~vitals[name].between(low, high)
        excluded += int(bad.sum())
        vitals.loc[bad, name] = np.nan
    return vitals, excluded


def coalesce(events: pd.DataFrame, seconds: float) -> tuple[pd.DataFrame, int, int]:
    """One aggregated reading per device and bucket (module docstring); also returns the values
    left out as out of range and the duplicates merged."""
    bucket_ms = round(seconds * 1000)
    frame = events.copy()
    frame["_ms"] = _epoch_ms(frame["event_time"])
    before = len(frame)
    frame = frame.drop_duplicates(["device_id", "_ms"], keep="first")
    duplicates = before - len(frame)
    vitals, excluded = _valid_vitals(frame)
    frame[list(VITAL_NAMES)] = vitals
    delay = frame.get("network_delay_ms", 0)
    frame["_arrival"] = frame["_ms"] + np.asarray(delay, dtype=np.int64)
    frame["_bucket"] = frame["_ms"] // bucket_ms
    rank = {level: i for i, level in enumerate(CONSCIOUSNESS_LEVELS)}
    frame["_rank"] = frame["consciousness"].astype(object).map(rank).astype("float64")
    frame["_o2"] = frame["o2_supplemental"].astype("float64")
    keys = ["patient_id", "device_id", "_bucket"]
    grouped = frame.groupby(keys, sort=True, observed=True)
    out = grouped[list(VITAL_NAMES)].mean()
    for name in VITAL_NAMES:
        out[name] = out[name].round(DISPLAY_DECIMALS[name])
    extra = grouped.agg(
        _ms=("_ms", "max"),
        _arrival=("_arrival", "max"),
        _rank=("_rank", "max"),
        _o2=("_o2", "max"),
        clock_skew_ms=("clock_skew_ms", "first"),
    )
    out = out.join(extra).reset_index()
    emit_ms = np.maximum((out["_bucket"].to_numpy() + 1) * bucket_ms, out["_arrival"].to_numpy())
    levels = np.array(CONSCIOUSNESS_LEVELS, dtype=object)
    rank_values = out["_rank"].to_numpy()
    consciousness = [None if np.isnan(r) else levels[int(r)] for r in rank_values]
    result = pd.DataFrame(
        {
            "patient_id": out["patient_id"].astype(events["patient_id"].dtype),
            "device_id": out["device_id"].astype(events["device_id"].dtype),
            "event_time": pd.to_datetime(out["_ms"], unit="ms", utc=True).astype(
                events["event_time"].dtype
            ),
            **{name: out[name] for name in VITAL_NAMES},
            "o2_supplemental": pd.array(
                [None if np.isnan(v) else bool(v) for v in out["_o2"]], dtype="boolean"
            ),
            "consciousness": pd.array(consciousness, dtype=events["consciousness"].dtype),
            "artefact": pd.array(["none"] * len(out), dtype=events["artefact"].dtype),
            "clock_skew_ms": out["clock_skew_ms"].astype("int64"),
            "network_delay_ms": (emit_ms - out["_ms"].to_numpy()).astype("int64"),
        }
    )
    return result, excluded, duplicates


def sample(events: pd.DataFrame, every: int) -> pd.DataFrame:
    """Every ``every``-th reading of each device in event-time order, from a phase derived from
    the device id (crc32, so the same in every run and every Python)."""
    ordered = events.assign(_ms=_epoch_ms(events["event_time"])).sort_values(
        ["device_id", "_ms"], kind="stable"
    )
    position = ordered.groupby("device_id", sort=False, observed=True).cumcount().to_numpy()
    phase = (
        ordered["device_id"].astype(str).map(lambda d: zlib.crc32(d.encode()) % every).to_numpy()
    )
    keep = (position + phase) % every == 0
    return ordered.loc[keep].drop(columns="_ms").sort_index()


def apply_gateway(events: pd.DataFrame, spec: GatewaySpec) -> tuple[pd.DataFrame, GatewayReport]:
    """The reduced stream with a ``gateway_id`` column, and the report."""
    report = GatewayReport(spec=asdict(spec), readings_in=len(events))
    if spec.mode == "coalesce":
        assert spec.seconds is not None
        out, report.excluded_out_of_range, report.duplicates_merged = coalesce(events, spec.seconds)
    elif spec.mode == "sample":
        assert spec.every is not None
        out = sample(events, spec.every)
    else:
        out = events.copy()
    out = out.reset_index(drop=True)
    out["gateway_id"] = assign_gateways(out, spec.group_size)
    report.devices = int(events["device_id"].nunique())
    report.gateways = int(out["gateway_id"].max()) + 1 if len(out) else 0
    report.messages_out = len(out)
    return out, report


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gateway", help="reduce a cohort's events at edge gateways")
    parser.add_argument(
        "--events", type=parquet_input, required=True, help="a cohort's events.parquet"
    )
    parser.add_argument(
        "--spec",
        type=json_argument,
        required=True,
        help="the condition's gateway block: JSON, or @FILE",
    )
    parser.add_argument("--out", type=writable_file, required=True, help="reduced events.parquet")
    parser.add_argument("--report", type=writable_file, required=True, help="gateway.json")
    parser.set_defaults(func=_cli_gateway)


def _cli_gateway(args: argparse.Namespace) -> int:
    spec = checked("--spec", GatewaySpec.from_mapping, args.spec)
    out, report = apply_gateway(pd.read_parquet(args.events), spec)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(args.out, index=False, compression="zstd")
    args.report.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(json.dumps(asdict(report)))
    return 0
