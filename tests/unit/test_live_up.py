"""The live monitor's command line and its pure parts: the status line from the job's health,
the settings the command line overrides, the record of a running ``up``, the live benchmark's
matching of alerts to the readings that fired them. The running system itself is exercised by
tests/integration/test_runbook.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vitalstream.core.config import load_config
from vitalstream.core.livesettings import LiveSettings
from vitalstream.services import uprecord
from vitalstream.serving import benchlive, livejob, up

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO / "scripts")}
    return subprocess.run(
        [sys.executable, "-m", "vitalstream", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["up", "--profile", "nosuch"], "no profile 'nosuch'"),
        (["up", "--webhook", "ftp://x"], "not an http(s) URL"),
        (["up", "--simulate", "-3"], "--simulate"),
        (["up", "--dashboard-port", "70000"], "--dashboard-port"),
        (["bench-live", "--patients", "0"], "--patients"),
        (["console-producer", "--state-dir", "/nonexistent/live"], "no running `up`"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert says in result.stderr


def test_the_command_line_overrides_the_live_block(tmp_path: Path) -> None:
    config = load_config()
    args = up.argparse.Namespace(
        webhook=["http://127.0.0.1:9/a"], state_dir=tmp_path / "s", dashboard_port=9999
    )
    live = up.live_settings(config, args)
    assert live.webhooks[-1] == "http://127.0.0.1:9/a"
    assert live.state_dir == (tmp_path / "s").resolve()
    assert live.dashboard_port == 9999
    assert live.topic == config["live"]["topic"]


def test_a_profile_is_layered_between_the_defaults_and_config_files(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("live: {window_s: 7}\n")
    args = up.argparse.Namespace(config=[extra], profile="quick")
    paths = up.config_paths(args)
    assert paths[1].name == "quick.yaml" and paths[-1] == extra
    live = LiveSettings.from_config(load_config(paths)["live"])
    assert live.window_s == 7  # the file given last wins over the profile


def test_relative_state_dirs_are_the_repositorys() -> None:
    live = LiveSettings.from_config({"state_dir": "results/elsewhere"})
    assert live.state_dir == REPO / "results" / "elsewhere"


# --------------------------------------------------------------------------- health and status


def _health(behind: int, batch_ms: int, rate: float) -> dict:
    query = {"behind": behind, "batch_ms": batch_ms, "input_per_s": rate}
    return {"queries": {"readings": query, "windows": {"behind": behind + 5}}, "published": 12,
            "alerts": 20, "deadletter": 3}  # fmt: skip


def test_the_status_line_names_rate_alerts_lag_batch_time_and_delivery() -> None:
    delivery = {"total": {"delivered": 11, "pending": 1, "failed_attempts": 2,
                          "latency_ms": {"p99": 40.0}}}  # fmt: skip
    health = up.health_summary(_health(4, 650, 999.5), delivery, 1, {"deadletter": 0.5})
    assert health["lag"] == 9  # the larger of the two queries'
    assert health["alerts_total"] == 12 and health["alerts_suppressed"] == 8
    assert health["webhook"] == {
        "delivered": 11,
        "pending": 1,
        "failed_attempts": 2,
        "p99_ms": 40.0,
    }
    line = up.status_line(health)
    assert line.startswith("status: ")
    for part in ("1,000 readings/s", "alerts 12", "lag 9", "batch 650 ms", "dead letter 3",
                 "webhook 11 delivered, 1 pending", "job restarts 1"):  # fmt: skip
        assert part in line


def test_a_job_without_health_yet_gives_dashes_not_errors() -> None:
    line = up.status_line(up.health_summary({}, {}, 0, {}))
    assert "- readings/s" in line and "lag -" in line


def test_rates_are_per_second_differences() -> None:
    rates = up.Rates()
    assert rates.update({"deadletter": 5.0}) == {}
    rates.last = (rates.last[0] - 2.0, rates.last[1])  # as if two seconds had passed
    assert rates.update({"deadletter": 9.0})["deadletter"] == pytest.approx(2.0, rel=0.05)


def test_a_query_is_behind_by_the_offsets_its_batch_left_unread() -> None:
    progress = {
        "batchId": 4,
        "durationMs": {"triggerExecution": 310, "addBatch": 200},
        "sources": [
            {
                "endOffset": json.dumps({"t": {"0": 100, "1": 50}}),
                "latestOffset": {"t": {"0": 130, "1": 50}},
            }
        ],
    }
    health = livejob.query_health(progress)
    assert health["behind"] == 30 and health["batch_ms"] == 310
    assert livejob.query_health(None) == {}


def test_commit_totals_are_read_incrementally(tmp_path: Path) -> None:
    log = tmp_path / "commits.jsonl"
    totals = livejob.CommitTotals(log)
    assert totals.update()["alerts"] == 0
    log.write_text(json.dumps({"alerts": 2, "published": 1, "deadletter": 4}) + "\n")
    assert totals.update() == {"alerts": 2, "published": 1, "deadletter": 4, "windows": 0,
                               "batches": 1}  # fmt: skip
    with log.open("a") as fh:
        fh.write(json.dumps({"windows": 7, "alerts": 1}) + "\n" + '{"alerts": 10')  # half a line
    assert totals.update()["alerts"] == 3  # the unfinished line waits for its end


# --------------------------------------------------------------------------- one up per folder


def test_one_up_per_state_folder_and_a_stale_record_does_not_block(tmp_path: Path) -> None:
    record = uprecord.claim(tmp_path)
    assert uprecord.running_up(tmp_path)["pid"] == os.getpid()
    with pytest.raises(uprecord.UpRunningError, match="stop it first"):
        uprecord.claim(tmp_path)
    uprecord.record(tmp_path, record, bootstrap="127.0.0.1:1")
    assert uprecord.running_up(tmp_path)["bootstrap"] == "127.0.0.1:1"
    stale = {**record, "created": record["created"] - 1000}  # a killed up's PID, reused
    (tmp_path / uprecord.UP_FILE).write_text(json.dumps(stale))
    assert uprecord.running_up(tmp_path) is None
    uprecord.claim(tmp_path)
    uprecord.release(tmp_path)
    assert uprecord.running_up(tmp_path) is None


# --------------------------------------------------------------------------- the live benchmark


def test_quantiles_of_an_empty_sample_are_none() -> None:
    assert benchlive.quantiles([]) == {"n": 0, "p50": None, "p99": None, "max": None}
    q = benchlive.quantiles([float(i) for i in range(1, 101)])
    assert q["n"] == 100 and q["max"] == 100.0 and 98 < q["p99"] < 100


def test_critical_readings_are_matched_to_their_alerts_by_patient_and_event_time() -> None:
    t = 1_800_000_000_000
    payloads = [
        ({"kind": "reading", "patient_id": "p1", "time": "2027-01-15T08:00:00+00:00"}, 5),
        ({"kind": "window", "patient_id": "p1", "time": "2027-01-15T08:00:00+00:00"}, 1),
    ]
    arrivals = benchlive.reading_arrivals(payloads)
    ts = benchlive.time_ms("2027-01-15T08:00:00+00:00")
    criticals = [
        {"patient_id": "p1", "ts_ms": ts, "send_wall_ns": 2_000_000},
        {"patient_id": "p2", "ts_ms": t, "send_wall_ns": 0},
    ]
    # arrival 5 ns after a send at 2 ms: negative latencies are possible only in a unit test
    latencies, missing = benchlive.critical_latencies(
        criticals, {**arrivals, ("p1", ts): 3_000_000}
    )
    assert latencies == [1.0] and missing == 1


def test_window_alerts_count_from_when_the_window_could_close() -> None:
    end = "2027-01-15T08:01:00+00:00"
    end_ns = benchlive.time_ms(end) * 1_000_000
    watermark_s = 5.0
    arrived = end_ns + 5_000_000_000 + 1_500_000_000  # 1.5 s after end + watermark
    payloads = [({"kind": "window", "window_end": end}, arrived),
                ({"kind": "reading", "time": end}, arrived)]  # fmt: skip
    assert benchlive.window_latencies(payloads, watermark_s, since_ns=0) == [1500.0]
    assert benchlive.window_latencies(payloads, watermark_s, since_ns=arrived) == []
