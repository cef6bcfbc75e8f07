"""``python -m vitalstream up``: the monitor as a running system, until Ctrl-C or SIGTERM.

It starts, or uses from the configuration, a Kafka broker and a search node; creates the live
topics; starts the streaming job (vitalstream.serving.livejob) from its checkpoint; delivers every
alert to the configured webhooks from an on-disk outbox (vitalstream.sinks.webhook); serves the
live dashboard (vitalstream.serving.livepage); and, with ``--simulate N``, runs N simulated
devices (vitalstream.ingest.simulate). It prints where everything is, one ``name: value`` line
each, so scripts can read them, then a one-line status every few seconds.

Why the job is a child process: a crashed or killed job is started again from its checkpoint by
this loop (the alert ids make the replay harmless), while the dashboard, the delivery outbox and
the services stay up. Why delivery is not in the job: a slow or absent receiver must never hold
a micro-batch, so the outbox reads the alerts topic on its own and retries on its own clock.

Not for: the live benchmark (vitalstream.serving.benchlive), which drives this command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import UsageError, nonnegative_int, positive_float, tcp_port_or_any
from vitalstream.core.config import (
    DEFAULT_CONFIG,
    add_config_arguments,
    config_from_args,
    load_config,
)
from vitalstream.core.livesettings import LiveSettings
from vitalstream.core.runsettings import Settings
from vitalstream.services import uprecord
from vitalstream.services.supervise import StartError
from vitalstream.serving import livestack
from vitalstream.serving.livejob import HEALTH_FILE, LIVE_RUN, job_dir, live_prefix, read_health
from vitalstream.serving.livepage import LivePage
from vitalstream.serving.livestate import AlertFeed, LiveState, WindowFeed
from vitalstream.sinks import search
from vitalstream.sinks.webhook import Notifier

PROFILES_DIR = DEFAULT_CONFIG.parent / "profiles"
HEALTH_EVERY_S = 1.0


@dataclass(frozen=True)
class UpOptions:
    """What the command line adds to the configuration."""

    simulate: int = 0
    seconds: float | None = None


# --------------------------------------------------------------------------- health


def health_summary(
    job: dict[str, Any], delivery: dict[str, Any], restarts: int, rates: dict[str, float]
) -> dict[str, Any]:
    """What the status line and the dashboard show, from the job's health and the outbox."""
    queries = job.get("queries") or {}
    readings = queries.get("readings") or {}
    windows = queries.get("windows") or {}
    behind = [q.get("behind") for q in (readings, windows) if q.get("behind") is not None]
    total = delivery.get("total", delivery)
    return {
        "readings_per_s": readings.get("input_per_s"),
        "lag": max(behind) if behind else None,
        "batch_ms": readings.get("batch_ms"),
        "window_batch_ms": windows.get("batch_ms"),
        "deadletter_total": job.get("deadletter", 0),
        "deadletter_per_s": rates.get("deadletter", 0.0),
        # Emitted alerts (those on the alerts topic); suppressed repeats are counted apart.
        "alerts_total": job.get("published", 0),
        "alerts_suppressed": max(job.get("alerts", 0) - job.get("published", 0), 0),
        "job_restarts": restarts,
        "webhook": {
            key: total.get(key)
            for key in ("delivered", "pending", "rejected", "failed_attempts")
            if key in total
        }
        | {"p99_ms": (total.get("latency_ms") or {}).get("p99")},
    }


def _number(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{float(value):,.{digits}f}"


def status_line(health: dict[str, Any]) -> str:
    """One line: readings/s, alerts, lag, micro-batch time, dead letter, webhook delivery."""
    hook = health.get("webhook") or {}
    parts = [
        f"{_number(health.get('readings_per_s'))} readings/s",
        f"alerts {_number(health.get('alerts_total'))}",
        f"lag {_number(health.get('lag'))}",
        f"batch {_number(health.get('batch_ms'))} ms",
        f"dead letter {_number(health.get('deadletter_total'))}",
    ]
    if hook.get("delivered") is not None:
        parts.append(f"webhook {hook['delivered']} delivered, {hook.get('pending', 0)} pending")
    parts.append(f"job restarts {health.get('job_restarts', 0)}")
    return "status: " + " · ".join(parts)


class Rates:
    """Per-second rates of running totals between two health reads."""

    def __init__(self) -> None:
        self.last: tuple[float, dict[str, float]] | None = None

    def update(self, totals: dict[str, float]) -> dict[str, float]:
        now = time.monotonic()
        rates = {}
        if self.last is not None and now > self.last[0]:
            dt = now - self.last[0]
            rates = {k: max(v - self.last[1].get(k, 0.0), 0.0) / dt for k, v in totals.items()}
        self.last = (now, dict(totals))
        return rates


# --------------------------------------------------------------------------- the system


class Monitor:
    """The running system: services, job, delivery, dashboard, simulator; one ``run()``."""

    def __init__(self, config: dict[str, Any], live: LiveSettings, options: UpOptions) -> None:
        self.config = config
        self.live = live
        self.options = options
        self.settings = Settings.from_config(config)
        self.stop_event = threading.Event()
        self.stack = contextlib.ExitStack()
        self.record: dict[str, Any] = {}

    def say(self, name: str, value: Any) -> None:
        """One ``name: value`` line for scripts, recorded in the state folder too."""
        print(f"{name}: {value}", flush=True)
        uprecord.record(self.live.state_dir, self.record, **{name.replace(" ", "_"): str(value)})

    def run(self) -> int:
        self.record = uprecord.claim(self.live.state_dir)
        self.stack.callback(uprecord.release, self.live.state_dir)
        try:
            with self.stack:
                self._start()
                return self._watch()
        finally:
            print("stopped: nothing of this `up` is running", flush=True)

    def _start(self) -> None:
        live, settings = self.live, self.settings
        heap = int((self.config.get("search") or {}).get("heap_mb", 512))
        services = livestack.start_services(settings.kafka, settings.search, live, heap)
        self.stack.callback(services.stop)
        self.services = services
        self.say("bootstrap", services.bootstrap)
        livestack.ensure_topics(services.bootstrap, live, settings.kafka.replication_factor)
        self.say("topic", live.topic)
        self.say("alerts topic", live.alerts_topic)
        self.say("checkpoint", job_dir(live) / "checkpoints")
        if services.search_url and settings.search is not None:
            prefix = live_prefix(settings.search.index_prefix)
            search.setup(services.search_url, prefix, f"{live.index_refresh_ms}ms")
            self.say("search", services.search_url)
        self._start_delivery()
        self._start_dashboard()
        self.job = self._job_process()
        self.stack.callback(self.job.stop)
        self.job.start(self.stop_event.is_set)
        self.say("job", f"running (pid {self.job.pid}, log {self.job.log})")
        uprecord.record(self.live.state_dir, self.record, job_pid=self.job.pid)
        if self.options.simulate:
            self._start_simulator()
        self.say("ready", "send readings to the topic; Ctrl-C stops everything")

    def _start_delivery(self) -> None:
        self.notifier = Notifier(
            self.services.bootstrap,
            self.live.alerts_topic,
            list(self.live.webhooks),
            self.live.state_dir / "delivery",
            self.live.delivery,
        )
        self.notifier.start()
        self.stack.callback(self.notifier.stop)
        for url in self.live.webhooks:
            self.say("webhook", url)

    def _start_dashboard(self) -> None:
        self.state = LiveState()
        feeds: list[Any] = [AlertFeed(self.services.bootstrap, self.live.alerts_topic, self.state)]
        if self.services.search_url and self.settings.search is not None:
            prefix = live_prefix(self.settings.search.index_prefix)
            feeds.append(WindowFeed(self.services.search_url, prefix, LIVE_RUN, self.state))
        for feed in feeds:
            feed.start()
            self.stack.callback(feed.stop)
        page = LivePage(self.state, port=self.live.dashboard_port)
        url = page.start()
        self.stack.callback(page.stop)
        self.say("dashboard", url)

    def _job_process(self) -> livestack.JobProcess:
        # The job reads the same settings, with this command line's overrides written in.
        config = dict(self.config)
        config["live"] = {**config.get("live", {}), "state_dir": str(self.live.state_dir)}
        config_file = self.live.state_dir / "config.json"
        config_file.write_text(json.dumps(config, indent=1, default=str))
        command = [sys.executable, "-m", "vitalstream", "live-job", "--config-file"]
        command += [str(config_file), "--bootstrap-servers", self.services.bootstrap]
        if self.services.search_url:
            command += ["--search-url", self.services.search_url]
        return livestack.JobProcess(command, self.live.state_dir / "job.log")

    def _start_simulator(self) -> None:
        sim = self.live.simulate
        command = [sys.executable, "-m", "vitalstream", "simulate"]
        command += ["--bootstrap-servers", self.services.bootstrap, "--topic", self.live.topic]
        command += ["--patients", str(self.options.simulate), "--rate-hz", str(sim.rate_hz)]
        command += ["--seed", str(sim.seed)]
        child = livestack.Child(command, self.live.state_dir / "simulator.log")
        self.stack.callback(child.stop)
        self.say("simulator", f"{self.options.simulate} patients (pid {child.proc.pid})")

    def _watch(self) -> int:
        """Health every second, a status line every ``status_every_s``, the job restarted
        when it died; until a signal (or ``--seconds``)."""
        rates = Rates()
        started = time.monotonic()
        last_status = started
        health_path = job_dir(self.live) / HEALTH_FILE
        while not self.stop_event.wait(HEALTH_EVERY_S):
            self._restart_job_if_dead()
            job = read_health(health_path)
            delivery = self.notifier.metrics()
            per_s = rates.update({"deadletter": float(job.get("deadletter", 0))})
            health = health_summary(job, delivery, self.job.restarts, per_s)
            self.state.set_health(health)
            now = time.monotonic()
            if now - last_status >= self.live.status_every_s:
                print(status_line(health), flush=True)
                last_status = now
            if self.options.seconds is not None and now - started >= self.options.seconds:
                break
        return 0

    def _restart_job_if_dead(self) -> None:
        code = self.job.exited()
        if code is None or self.stop_event.is_set():
            return
        self.job.restarts += 1
        print(f"job: exited with {code}; restarting from its checkpoint", flush=True)
        time.sleep(self.live.restart_backoff_s)
        self.job.start(self.stop_event.is_set)
        self.say("job", f"running again (pid {self.job.pid}, restart {self.job.restarts})")
        uprecord.record(self.live.state_dir, self.record, job_pid=self.job.pid)


# --------------------------------------------------------------------------- command line


@contextlib.contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask for a clean stop; a second one during the stop is ignored (the
    stop itself is bounded: every part has a timeout, and then a SIGKILL)."""

    def handler(signum: int, frame: Any) -> None:
        if not stop.is_set():
            print("stopping…", flush=True)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def config_paths(args: argparse.Namespace) -> list[Path]:
    paths = [DEFAULT_CONFIG, *(args.config or [])]
    if args.profile:
        profile = PROFILES_DIR / f"{args.profile}.yaml"
        if not profile.exists():
            names = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
            raise UsageError(f"argument --profile: no profile {args.profile!r} (have: {names})")
        paths.insert(1, profile)
    return paths


def _webhook(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text.split("//", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r}")
    return text


def live_settings(config: dict[str, Any], args: argparse.Namespace) -> LiveSettings:
    """The ``live`` block with the command line's overrides."""
    live = LiveSettings.from_config(config.get("live", {}))
    changes: dict[str, Any] = {"webhooks": (*live.webhooks, *(args.webhook or []))}
    if args.state_dir is not None:
        changes["state_dir"] = args.state_dir.resolve()
    if args.dashboard_port is not None:
        changes["dashboard_port"] = args.dashboard_port
    return replace(live, **changes)


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "up", help="run the monitor: broker, search node, streaming job, dashboard, webhooks"
    )
    add_config_arguments(parser, required=False)
    parser.add_argument("--profile", help="a profile of config/profiles/ over the configuration")
    parser.add_argument(
        "--simulate", type=nonnegative_int, default=0, metavar="N", help="N simulated devices"
    )
    parser.add_argument(
        "--webhook", type=_webhook, action="append", metavar="URL", help="POST alerts here"
    )
    parser.add_argument("--state-dir", type=Path, help="override live.state_dir")
    parser.add_argument(
        "--dashboard-port", type=tcp_port_or_any, help="override live.dashboard_port (0: any)"
    )
    parser.add_argument("--seconds", type=positive_float, help="stop after this long")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    if args.config_file or args.config_json:
        config = config_from_args(args)
    else:
        config = load_config(config_paths(args))
    live = live_settings(config, args)
    monitor = Monitor(config, live, UpOptions(simulate=args.simulate, seconds=args.seconds))
    with _signals(monitor.stop_event):
        try:
            return monitor.run()
        except (
            livestack.LiveError,
            uprecord.UpRunningError,
            StartError,
            search.SearchError,
        ) as error:
            text = " ".join(str(error).split())
            print(f"vitalstream up: error: {text}", file=sys.stderr, flush=True)
            return 1
