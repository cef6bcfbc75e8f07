"""``python -m vitalstream bench-live``: the running system under a live load, measured as its
users meet it. One JSON line on stdout (and ``--out``).

It starts ``up`` over a fresh state folder with one webhook, this process's own receiver
(vitalstream.serving.receiver), then drives the topic with the device simulator
(vitalstream.ingest.simulate) at N patients × R readings/s: first a warm-up (JIT, first batches),
then the measured load, with critical readings injected on distinct patients and a share of
tachycardic patients whose windows fire. It measures:

* critical reading → webhook: the receiver's arrival time minus the reading's send time, per
  injected critical reading (matched by patient and event time);
* critical reading → dashboard: the same, to the moment the alert reached the page's own live
  channel (vitalstream.serving.livepage.watch_alerts, what an open page receives);
* window alert → webhook, counted from the moment the window could close: its end plus the
  watermark delay, on the live clock (event time is the devices' wall clock);
* sustained readings/s (sent, and as the job reported them), the largest lag, and the CPU the
  system under test used (``up`` and every process under it), in cores.

Targets (issue #21) are printed beside the figures, never asserted: timings on a shared 2-core
machine are reported, not tested.

Not for: the performance experiments of the paper's RQ1/RQ5 (vitalstream.experiments.perf).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from vitalstream.core.cliargs import positive_float, positive_int
from vitalstream.core.config import DEFAULT_CONFIG, add_config_arguments, load_config
from vitalstream.core.livesettings import BenchSettings, LiveSettings
from vitalstream.core.paths import SCRIPTS_DIR
from vitalstream.serving.livepage import watch_alerts
from vitalstream.serving.receiver import Receiver

WARMUP_S = 20.0
READY_TIMEOUT_S = 400.0


class BenchError(RuntimeError):
    """The benchmark could not measure what it was asked to (the message says what)."""


TARGETS_MS = {"critical_p99": 1000.0, "window_p99": 2000.0}


def quantiles(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    """P50, P99 and max of a latency sample (ms), and its size."""
    if not len(values_ms):
        return {"n": 0, "p50": None, "p99": None, "max": None}
    a = np.asarray(values_ms, dtype=float)
    return {
        "n": int(a.size),
        "p50": round(float(np.percentile(a, 50)), 1),
        "p99": round(float(np.percentile(a, 99)), 1),
        "max": round(float(a.max()), 1),
    }


# --------------------------------------------------------------------------- the system under test


class UpProcess:
    """``up`` as a child process: its ``name: value`` lines parsed, its status lines kept."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()
        )
        self.lines: dict[str, str] = {}
        self.ready = threading.Event()
        self.log = log
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("a") as fh:
            for line in self.proc.stdout:
                fh.write(line)
                fh.flush()
                name, sep, value = line.rstrip("\n").partition(": ")
                if sep and name not in self.lines:
                    self.lines[name] = value
                if name == "ready":
                    self.ready.set()
        self.ready.set()

    def wait_ready(self, timeout_s: float) -> None:
        if not self.ready.wait(timeout_s) or "ready" not in self.lines:
            self.stop()
            raise RuntimeError(f"`up` did not become ready; see {self.log}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of ``up`` and every process under it, so far."""
        try:
            root = psutil.Process(self.proc.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def stop(self, timeout_s: float = 120.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        return int(self.proc.returncode)


def _simulate(bootstrap: str, topic: str, bench: BenchSettings, seconds: float, report: Path,
              seed: int, inject: bool, log: Path) -> subprocess.Popen[bytes]:  # fmt: skip
    """The device simulator as a process of its own (its CPU is not the system's)."""
    command = [sys.executable, "-m", "vitalstream", "simulate", "--bootstrap-servers", bootstrap]
    command += ["--topic", topic, "--patients", str(bench.patients)]
    command += ["--rate-hz", str(bench.rate_hz), "--seconds", str(seconds), "--seed", str(seed)]
    command += ["--report", str(report)]
    if inject:
        command += ["--critical-per-mille", str(bench.critical_per_mille)]
        command += ["--tachycardic-per-mille", str(bench.tachycardic_per_mille)]
    with log.open("ab") as fh:
        return subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=_env())


def _env() -> dict[str, str]:
    """The environment of a child: this package importable, wherever it was found."""
    path = os.pathsep.join(filter(None, [str(SCRIPTS_DIR), os.environ.get("PYTHONPATH")]))
    return os.environ | {"PYTHONPATH": path}


def _health_samples(state_dir: Path, stop: threading.Event, out: list[dict[str, Any]]) -> None:
    """The job's health once a second while the load runs (rates and lag over time)."""
    path = state_dir / "job" / "health.json"
    while not stop.wait(1.0):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue


def screenshot(url: str, path: Path, seconds: float = 6.0) -> bool:
    """A headless Chromium screenshot of the live dashboard (False: no browser here)."""
    browser = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    if browser is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        command += [f"--user-data-dir={profile}", "--window-size=1400,1000"]
        # Short long-polls: headless Chromium's virtual clock waits for every open request.
        command += [f"--virtual-time-budget={int(seconds * 1000)}", f"--screenshot={path}"]
        command.append(f"{url}?wait=1&gap=1000")
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return result.returncode == 0 and path.exists()


# --------------------------------------------------------------------------- matching


def critical_latencies(
    criticals: Iterable[dict[str, Any]],
    arrivals: dict[tuple[str, int], int],
) -> tuple[list[float], int]:
    """Per injected critical reading, arrival minus send (ms); and how many never arrived."""
    latencies, missing = [], 0
    for c in criticals:
        arrived = arrivals.get((str(c["patient_id"]), int(c["ts_ms"])))
        if arrived is None:
            missing += 1
        else:
            latencies.append((arrived - int(c["send_wall_ns"])) / 1e6)
    return latencies, missing


def time_ms(text: str | None) -> int | None:
    if not text:
        return None
    import pandas as pd

    return int(pd.Timestamp(text).value // 1_000_000)


def reading_arrivals(payloads: Iterable[tuple[dict[str, Any], int]]) -> dict[tuple[str, int], int]:
    """Reading alerts by (patient, event time ms) → first arrival (ns)."""
    out: dict[tuple[str, int], int] = {}
    for payload, arrived in payloads:
        if payload.get("kind") != "reading":
            continue
        key = (str(payload.get("patient_id")), time_ms(payload.get("time")) or -1)
        out.setdefault(key, arrived)
    return out


def window_latencies(
    payloads: Iterable[tuple[dict[str, Any], int]], watermark_s: float, since_ns: int
) -> list[float]:
    """Window alerts: arrival minus (window end + watermark), the moment it could close (ms);
    only windows that could close after ``since_ns`` (the measured load)."""
    out = []
    for payload, arrived in payloads:
        if payload.get("kind") != "window":
            continue
        end = time_ms(payload.get("window_end") or payload.get("time"))
        if end is None:
            continue
        closable_ns = (end + int(watermark_s * 1000)) * 1_000_000
        if closable_ns >= since_ns:
            out.append((arrived - closable_ns) / 1e6)
    return out


# --------------------------------------------------------------------------- the benchmark


def run_bench(
    config_paths: Sequence[Path],
    bench: BenchSettings,
    live: LiveSettings,
    work: Path,
    shot: Path | None,
) -> dict[str, Any]:
    """Start ``up``, warm it up, load it, measure, stop it; the figures as a dict."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    state = work / "state"
    receiver = Receiver(port=0, log=work / "received.jsonl")
    hook = receiver.start()
    command = [sys.executable, "-m", "vitalstream", "up", "--state-dir", str(state)]
    command += ["--webhook", hook, "--dashboard-port", str(_free_port())]
    for path in config_paths:
        command += ["--config", str(path)]
    up = UpProcess(command, work / "up.log")
    seen: dict[str, int] = {}
    stop_watch = threading.Event()
    try:
        up.wait_ready(READY_TIMEOUT_S)
        bootstrap, topic, dashboard = (
            up.lines["bootstrap"],
            up.lines["topic"],
            up.lines["dashboard"],
        )
        watcher = threading.Thread(
            target=watch_alerts,
            args=(dashboard, lambda alert_id, ns: seen.setdefault(alert_id, ns), stop_watch),
            daemon=True,
        )
        watcher.start()
        warm = _simulate(bootstrap, topic, bench, WARMUP_S, work / "warmup.json",
                         live.simulate.seed + 1, False, work / "simulator.log")  # fmt: skip
        warm.wait()
        samples: list[dict[str, Any]] = []
        stop_samples = threading.Event()
        sampler = threading.Thread(
            target=_health_samples, args=(state, stop_samples, samples), daemon=True
        )
        sampler.start()
        cpu0, wall0, start_ns = up.cpu_seconds(), time.monotonic(), time.time_ns()
        load = _simulate(bootstrap, topic, bench, bench.seconds, work / "load.json",
                         live.simulate.seed, True, work / "simulator.log")  # fmt: skip
        load.wait()
        cpu1, wall1 = up.cpu_seconds(), time.monotonic()
        if shot is not None and not screenshot(dashboard, shot):
            raise BenchError(f"no screenshot of the dashboard at {shot}: is Chromium installed?")
        time.sleep(live.watermark_s + 5.0)  # the last alerts' way to the receiver
        stop_samples.set()
        sampler.join(timeout=5)
        report = json.loads((work / "load.json").read_text())
    finally:
        stop_watch.set()
        up.stop()
        receiver.stop()
    return summarise(receiver, seen, report, samples, live, bench,
                     cpu=(cpu1 - cpu0) / max(wall1 - wall0, 1e-9), start_ns=start_ns)  # fmt: skip


def summarise(receiver: Receiver, seen: dict[str, int], report: dict[str, Any],
              samples: list[dict[str, Any]], live: LiveSettings, bench: BenchSettings,
              *, cpu: float, start_ns: int) -> dict[str, Any]:  # fmt: skip
    """The JSON line: latencies, rates, lag, CPU, beside the targets."""
    got = [
        (a.payload, a.arrival_wall_ns) for a in receiver.arrivals() if isinstance(a.payload, dict)
    ]
    firsts: dict[str, tuple[dict[str, Any], int]] = {}
    for payload, ns in got:
        firsts.setdefault(str(payload.get("alert_id")), (payload, ns))
    unique = list(firsts.values())
    criticals = report.get("criticals", [])
    webhook_ms, missing = critical_latencies(criticals, reading_arrivals(unique))
    page = [(payload, seen[a]) for a, (payload, _) in firsts.items() if a in seen]
    page_ms, page_missing = critical_latencies(criticals, reading_arrivals(page))
    rates = [(s.get("queries") or {}).get("readings", {}).get("input_per_s") for s in samples]
    lags = [
        b
        for s in samples
        for q in (s.get("queries") or {}).values()
        if (b := q.get("behind")) is not None
    ]
    return {
        "patients": bench.patients,
        "rate_hz": bench.rate_hz,
        "seconds": bench.seconds,
        "window_s": live.window_s,
        "watermark_s": live.watermark_s,
        "readings_sent": report.get("sent"),
        "readings_per_s_sent": report.get("achieved_rate"),
        "readings_per_s_job": float(np.median([r for r in rates if r])) if any(rates) else None,
        "lag_max": max(lags) if lags else None,
        "cpu_cores": round(cpu, 2),
        "machine_cores": os.cpu_count(),
        "critical": {
            "injected": len(criticals),
            "webhook_ms": quantiles(webhook_ms),
            "dashboard_ms": quantiles(page_ms),
            "missing_webhook": missing,
            "missing_dashboard": page_missing,
        },
        "window": {
            "webhook_ms": quantiles(window_latencies(unique, live.watermark_s, start_ns)),
        },
        "webhook": {
            "received": len(got),
            "unique": len(unique),
            "duplicates": len(got) - len(unique),
        },
        "targets_ms": TARGETS_MS,
    }


def _free_port() -> int:
    from vitalstream.services.supervise import free_port

    return free_port()


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-live", help="drive the running monitor with live load; one JSON line"
    )
    add_config_arguments(parser, required=False)
    parser.add_argument("--patients", type=positive_int, help="override live.bench.patients")
    parser.add_argument("--rate", type=positive_float, help="readings per patient per second")
    parser.add_argument("--seconds", type=positive_float, help="length of the measured load")
    parser.add_argument("--work-dir", type=Path, default=None, help="state and logs of the run")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--screenshot", type=Path, help="PNG of the live dashboard under load")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from dataclasses import replace

    paths = [DEFAULT_CONFIG, *(args.config or [])]
    if args.config_file:
        paths.append(args.config_file)
    config = load_config(paths)
    live = LiveSettings.from_config(config.get("live", {}))
    bench = live.bench
    overrides = {"patients": args.patients, "rate_hz": args.rate, "seconds": args.seconds}
    bench = replace(bench, **{k: v for k, v in overrides.items() if v is not None})
    work = (args.work_dir or live.state_dir.parent / "bench-live").resolve()
    try:
        result = run_bench(paths[1:], bench, live, work, args.screenshot)
    except BenchError as error:
        print(f"vitalstream bench-live: error: {error}", file=sys.stderr, flush=True)
        return 1
    line = json.dumps(result, sort_keys=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")
    print(line, flush=True)
    return 0
