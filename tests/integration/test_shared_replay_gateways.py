"""Shared replays and edge gateways against a real broker and real Spark.

* One replay read by jobs with different watermarks (experiments.siblings): every job reads
  every message; the events missing from each job's windows are exactly the rows it reports as
  dropped, a longer watermark drops no more than a shorter one, and the per-reading outputs a
  windows-only job receives are those of the job that ran the per-reading query.
* Edge gateways (vitalstream.data.gateway), two conditions at once in one Spark session, a replay
  each: a coalesced replay goes out through one producer per gateway, puts fewer bytes on the
  wire than forwarding every reading, and the job windows each replay exactly as the batch
  reference windows the same events.
"""

from __future__ import annotations

import pandas as pd
import pytest
from vitalstream.core.config import DEFAULT_CONFIG, RunId, load_config
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.runsettings import Settings
from vitalstream.data.cohort import CohortParams, generate_cohort, write_cohort
from vitalstream.data.gateway import GatewaySpec, apply_gateway
from vitalstream.experiments import siblings
from vitalstream.measure import metrics
from vitalstream.reference import batch as vsreference
from vitalstream.reference import validation

pytestmark = pytest.mark.integration
COHORT = {
    "patients": 12,
    "hours": 0.25,
    "seed": 11,
    "prevalence": 0.5,
    "ramp_minutes": 5.0,
    "network_delay": "exponential",
    "network_delay_mean_ms": 15_000.0,
    "very_late_fraction": 0.01,
    "very_late_ms": 300_000.0,
}


def reference_dir(events: pd.DataFrame, cfg: dict, params: dict, out) -> object:
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


@pytest.fixture(scope="module")
def shared(kafka, tmp_path_factory) -> dict:
    cfg = load_config([DEFAULT_CONFIG])
    cfg["cohorts"]["late_exp10"] = dict(COHORT)
    rq3 = cfg["experiments"]["rq3"]
    rq3["grid"] = [
        {"param": "cohort", "values": ["late_exp10"], "label": ""},
        {"param": "watermark_s", "values": [0, 300], "label": "w"},
    ]
    # 12 patients: 240 readings per batch keep a batch to 20 s of event time.
    rq3["defaults"]["max_offsets_per_trigger"] = 240
    generated = generate_cohort(CohortParams.from_mapping(COHORT))
    paths = write_cohort(generated, tmp_path_factory.mktemp("cohort"))
    runs = [RunId("rq3", "late_exp10_w0", 1), RunId("rq3", "late_exp10_w300", 1)]
    root = tmp_path_factory.mktemp("runs")
    settings = Settings.from_config(cfg)
    results = siblings.run_shared(settings, runs, paths["events"], root, kafka.bootstrap_servers)
    checks = {}
    for run in runs:
        run_dir = root / run.path
        params = results[run.path]["condition"]
        ref = reference_dir(generated.events, cfg, params, run_dir / "reference")
        checks[run.condition] = validation.validate_run(run_dir, ref)
    return {"results": results, "checks": checks, "root": root, "runs": runs}


def test_every_job_of_a_shared_replay_reads_every_message(shared):
    processed = {r["events_processed"] for r in shared["results"].values()}
    assert len(processed) == 1 and processed.pop() > 0


def test_missing_events_are_the_reported_drops_and_a_longer_watermark_drops_less(shared):
    short, long = shared["checks"]["late_exp10_w0"], shared["checks"]["late_exp10_w300"]
    for check in (short, long):
        assert check["missing_equals_dropped"], check
        assert check["windows_mismatching"] == 0
    assert short["events_missing"] > 0  # 1 % of the readings are 5 min late
    assert long["events_missing"] <= short["events_missing"]
    assert long["completeness"] >= short["completeness"]


def test_alert_delay_in_event_time_grows_with_the_watermark(shared):
    delay = {
        name.rsplit("_w", 1)[1]: r["alert_delay_event_s"]["p50"]
        for name, r in ((p.split("/")[1], r) for p, r in shared["results"].items())
    }
    assert delay["300"] >= 300 > delay["0"] >= 0


def test_windows_only_jobs_receive_the_per_reading_outputs(shared):
    first, other = (shared["root"] / run.path for run in shared["runs"])
    for name in ("deadletter", "alerts/query=readings"):
        a, b = metrics.read_parquet_dir(first / name), metrics.read_parquet_dir(other / name)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    r = shared["results"]
    assert (
        r["rq3/late_exp10_w0/rep1"]["quarantined"] == r["rq3/late_exp10_w300/rep1"]["quarantined"]
    )


@pytest.fixture(scope="module")
def gateways(kafka, tmp_path_factory) -> dict:
    """Two gateway conditions, each its own replay, at once in one Spark session."""
    cfg = load_config([DEFAULT_CONFIG])
    cohort = {k: v for k, v in COHORT.items() if "delay" not in k and "late" not in k}
    cfg["cohorts"]["robustness"] = cohort
    cfg["experiments"]["rq2"]["conditions"]["raw"]["gateway"] = {"group_size": 5}
    cfg["experiments"]["rq2"]["conditions"]["coalesce10"]["gateway"]["group_size"] = 5
    generated = generate_cohort(CohortParams.from_mapping(cohort))
    specs = {
        "raw": GatewaySpec("forward", group_size=5),
        "coalesce10": GatewaySpec("coalesce", group_size=5, seconds=10),
    }
    runs, paths, reduced, reports = [], [], {}, {}
    for name, spec in specs.items():
        reduced[name], reports[name] = apply_gateway(generated.events, spec)
        folder = tmp_path_factory.mktemp(name)
        reduced[name].to_parquet(folder / "events.parquet")
        runs.append(RunId("rq2", name, 1))
        paths.append(folder / "events.parquet")
    root = tmp_path_factory.mktemp("runs")
    results = siblings.run_shared(
        Settings.from_config(cfg), runs, paths, root, kafka.bootstrap_servers
    )
    out = {}
    for run in runs:
        run_dir = root / run.path
        result = results[run.path]
        events = reduced[run.condition].drop(columns="gateway_id")
        ref = reference_dir(events, cfg, result["condition"], run_dir / "ref")
        out[run.condition] = {
            "result": result,
            "report": reports[run.condition],
            "check": validation.validate_run(run_dir, ref),
        }
    return out


def test_each_gateway_sends_through_its_own_producer(gateways):
    # 12 devices, 5 to a gateway: three gateways, three producers.
    for run in gateways.values():
        assert run["report"].gateways == 3
        assert run["result"]["producers"] == 3


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
