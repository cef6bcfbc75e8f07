"""Shared replays and edge gateways, checked on the quick workflow's own runs (conftest.quick_run:
a real broker and real Spark, the runs the paper reports), not on runs of their own.

* One replay read by jobs with different watermarks (experiments.siblings; rq3's two conditions
  in one session): every job reads every message; the events missing from each job's windows
  are exactly the rows it reports as dropped, a longer watermark drops no more than a shorter
  one, and the per-reading outputs a windows-only job receives are those of the job that ran
  the per-reading query.
* Edge gateways (vitalstream.data.gateway; rq2's conditions, each its own replay, at once in
  one Spark session): every replay goes out through one producer per gateway, a coalesced
  replay puts fewer bytes on the wire than forwarding every reading, and the job windows each
  replay exactly as the batch reference windows the same events.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from vitalstream.core.config import load_config
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.measure import metrics
from vitalstream.reference import batch as vsreference
from vitalstream.reference import validation

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
WATERMARKS = ("late_exp10_w0", "late_exp10_w120")
GATEWAYS = ("raw", "coalesce10")
REPORT = "gateway.json"  # rule gateway_events
MODEL_RULE = "risk_model"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def quick_config(workdir: Path) -> dict[str, Any]:
    """The configuration the quick run ran with: config.yaml under the quick profile."""
    config = workdir / "config"
    return load_config([config / "config.yaml", config / "profiles" / "quick.yaml"])


@pytest.fixture(scope="module")
def shared(quick_workdir: Path, quick_run) -> dict[str, Any]:
    """rq3's two watermarks: one replay, two jobs in one session, each validated by the
    workflow against the batch reference (rule validate_run)."""
    runs = {c: quick_workdir / "results" / "runs" / "rq3" / c / "rep1" for c in WATERMARKS}
    return {
        "runs": runs,
        "metrics": {c: read_json(d / "metrics.json") for c, d in runs.items()},
        "checks": {c: read_json(d / "validation.json") for c, d in runs.items()},
        "watermark": {c: read_json(d / "condition.json")["watermark_s"] for c, d in runs.items()},
    }


def test_every_job_of_a_shared_replay_reads_every_message(shared):
    processed = {m["events_processed"] for m in shared["metrics"].values()}
    assert len(processed) == 1 and processed.pop() > 0


def test_missing_events_are_the_reported_drops_and_a_longer_watermark_drops_less(shared):
    short, long = (shared["checks"][c] for c in WATERMARKS)
    for check in (short, long):
        assert check["missing_equals_dropped"], check
        assert check["windows_mismatching"] == 0
    assert short["events_missing"] > 0  # readings up to minutes late, exponential delays
    assert long["events_missing"] <= short["events_missing"]
    assert long["completeness"] >= short["completeness"]


def test_alert_delay_in_event_time_grows_with_the_watermark(shared):
    short, long = WATERMARKS
    delay = {c: m["alert_delay_event_s"]["p50"] for c, m in shared["metrics"].items()}
    watermark = shared["watermark"]
    assert watermark[short] < watermark[long]
    assert delay[long] >= watermark[long] > delay[short] >= 0


def test_windows_only_jobs_receive_the_per_reading_outputs(shared):
    first, other = (shared["runs"][c] for c in WATERMARKS)
    for name in ("deadletter", "alerts/query=readings"):
        a, b = metrics.read_parquet_dir(first / name), metrics.read_parquet_dir(other / name)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    quarantined = {m["quarantined"] for m in shared["metrics"].values()}
    assert len(quarantined) == 1


def reference_dir(events: pd.DataFrame, cfg: dict, params: dict, out: Path) -> Path:
    ref = vsreference.compute(
        events,
        DiagnosticsSpec.from_config(cfg["diagnostics"]),
        params["window_s"],
        params["slide_s"],
    )
    out.mkdir(parents=True, exist_ok=True)
    ref["windows"].to_parquet(out / "windows.parquet")
    ref["alerts"].to_parquet(out / "alerts.parquet")
    return out


def without_model_alerts(run_dir: Path, out: Path) -> Path:
    """The run's windows, metrics and alerts but the risk model's: rq2's runs also score the
    window risk model (the RQ4 section reads them), which the batch reference does not."""
    for name in ("metrics.json", "windows"):
        (out / name).symlink_to(run_dir / name)
    (out / "alerts").mkdir()
    alerts = metrics.read_parquet_dir(run_dir / "alerts")
    alerts[alerts["rule"] != MODEL_RULE].to_parquet(out / "alerts" / "part.parquet")
    return out


@pytest.fixture(scope="module")
def gateways(quick_workdir: Path, quick_run, tmp_path_factory) -> dict[str, Any]:
    """rq2's forwarding and coalescing gateways, each its own replay in one session: each
    run's windows and alerts against the batch reference of the events its gateway sent."""
    cfg = quick_config(quick_workdir)
    patients = cfg["cohorts"][cfg["experiments"]["rq2"]["cohort"]]["patients"]
    out = {}
    for name in GATEWAYS:
        run_dir = quick_workdir / "results" / "runs" / "rq2" / name / "rep1"
        condition = read_json(run_dir / "condition.json")
        sent = quick_workdir / "data" / "gateways" / "rq2" / name / "events.parquet"
        events = pd.read_parquet(sent).drop(columns="gateway_id")
        ref = reference_dir(events, cfg, condition, tmp_path_factory.mktemp(f"ref-{name}"))
        scored = without_model_alerts(run_dir, tmp_path_factory.mktemp(f"run-{name}"))
        out[name] = {
            "result": read_json(run_dir / "metrics.json"),
            "report": read_json(quick_workdir / "results" / "gateways" / "rq2" / name / REPORT),
            "gateways": math.ceil(patients / condition["gateway"]["group_size"]),
            "check": validation.validate_run(scored, ref),
        }
    return out


def test_each_gateway_sends_through_its_own_producer(gateways):
    for run in gateways.values():
        # More than one (the quick profile's rq2 puts 20 devices on a gateway), or one producer
        # per gateway could not be told from one producer per run.
        assert run["gateways"] > 1
        assert run["report"]["gateways"] == run["gateways"]
        assert run["result"]["producers"] == run["gateways"]


def test_coalescing_puts_fewer_bytes_on_the_wire(gateways):
    raw, coalesced = gateways["raw"]["result"], gateways["coalesce10"]["result"]
    assert 0 < coalesced["producer_wire_bytes"] < raw["producer_wire_bytes"]
    # Compression: the wire carries fewer bytes than the JSON handed to the client.
    assert raw["producer_wire_bytes"] < raw["producer_bytes"]


def test_the_job_windows_reduced_events_as_the_reference_does(gateways):
    for run in gateways.values():
        check = run["check"]
        assert check["windows_mismatching"] == 0 and check["events_missing"] == 0, check
        assert check["alerts_missing"] == 0 and check["alerts_extra"] == 0, check
        assert check["alerts_reference"] > 0
