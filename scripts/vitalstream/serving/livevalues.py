"""The running system in the paper: the live benchmark's figures as macro values, and the
dashboard's screenshot as the section's figure (``python -m vitalstream live-values``).

``bench-live`` (vitalstream.serving.benchlive) writes one JSON object: the load, the
critical-reading and window-alert latencies to the webhook and to the page, the rates, the CPU
and the targets. Every number the section prints is a macro made here from that file, the
targets too, so that a change of target or load reaches the text without an edit. Whether a
target was met is computed here as well (a P99 at most the target, and for critical readings
none missing), so the text states a miss in the same words as a hit.

The screenshot is copied to the paper's figures after a check that it is a PNG: the
benchmark's own rule writes outside results/paper, so that a rebuild from a results archive
(vitalstream.paper.archive) takes the archived screenshot and never starts the live system.

Not for: measuring (vitalstream.serving.benchlive) or the serving paragraph's index latency
(vitalstream.serving.values).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import (
    UsageError,
    existing_file,
    json_file,
    require_keys,
    writable_file,
)
from vitalstream.core.values import lookup, macro_value, write_values

# The keys of a bench-live JSON this command reads (benchlive.summarise writes them).
REQUIRED_KEYS = ("patients", "rate_hz", "seconds", "critical", "window", "webhook", "targets_ms")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"
# "plain": as few decimals as the value needs (1 reading/s, not 1.0; 0.5 stays 0.5).
PLAIN = -1


@dataclass(frozen=True)
class LiveMacro:
    """``\\name`` = the bench JSON's value at ``key`` (dot path), shown with ``decimals``."""

    name: str
    key: str
    decimals: int | None
    description: str


def _quantile_macros(stem: str, key: str, what: str) -> list[LiveMacro]:
    rows = [
        LiveMacro(f"{stem}Pfifty", f"{key}.p50", 0, f"{what}, P50 (ms)"),
        LiveMacro(f"{stem}Pninetynine", f"{key}.p99", 0, f"{what}, P99 (ms)"),
        LiveMacro(f"{stem}Max", f"{key}.max", 0, f"{what}, max (ms)"),
    ]
    return [*rows, LiveMacro(f"{stem}Count", f"{key}.n", 0, f"{what}: alerts measured")]


MACROS: tuple[LiveMacro, ...] = (
    LiveMacro("LivePatients", "patients", 0, "simulated patients"),
    LiveMacro("LiveRateHz", "rate_hz", PLAIN, "readings per patient per second"),
    LiveMacro("LiveSeconds", "seconds", PLAIN, "length of the measured load (s)"),
    LiveMacro("LiveWindowSeconds", "window_s", PLAIN, "the live job's window (s)"),
    LiveMacro("LiveWatermarkSeconds", "watermark_s", PLAIN, "the live job's watermark (s)"),
    LiveMacro("LiveReadingsSent", "readings_sent", 0, "readings the simulator sent"),
    LiveMacro("LiveReadingsPerSecondSent", "readings_per_s_sent", 0, "readings/s sent"),
    LiveMacro("LiveReadingsPerSecondJob", "readings_per_s_job", 0, "readings/s the job read"),
    LiveMacro("LiveLagMax", "lag_max", 0, "largest lag of the job (offsets behind)"),
    LiveMacro("LiveCpuCores", "cpu_cores", 1, "CPU the system under test used (cores)"),
    LiveMacro("LiveMachineCores", "machine_cores", 0, "logical cores of the machine"),
    LiveMacro("LiveCriticalInjected", "critical.injected", 0, "critical readings injected"),
    *_quantile_macros("LiveCriticalWebhook", "critical.webhook_ms", "critical → webhook"),
    *_quantile_macros("LiveCriticalDashboard", "critical.dashboard_ms", "critical → page"),
    LiveMacro("LiveCriticalMissingWebhook", "critical.missing_webhook", 0, "never at webhook"),
    LiveMacro("LiveCriticalMissingDashboard", "critical.missing_dashboard", 0, "never on page"),
    *_quantile_macros("LiveWindowWebhook", "window.webhook_ms", "window could close → webhook"),
    LiveMacro("LiveWebhookReceived", "webhook.received", 0, "POSTs the receiver got"),
    LiveMacro("LiveWebhookUnique", "webhook.unique", 0, "distinct alert ids it got"),
    LiveMacro("LiveWebhookDuplicates", "webhook.duplicates", 0, "repeated alert ids"),
)


def _value(bench: Mapping[str, Any], key: str) -> Any:
    """The value at ``key``; ``None`` (printed n/a) where the benchmark has none."""
    try:
        return lookup(bench, key)
    except KeyError:
        return None


def _plain_decimals(value: Any) -> int:
    """0 for a whole number, else 2 (a rate of 0.25 readings/s keeps its digits)."""
    return 0 if float(value).is_integer() else 2


def _entry(value: Any, decimals: int | None, source: str, description: str) -> dict[str, Any]:
    if value is not None and decimals == PLAIN:
        decimals = _plain_decimals(value)
    return macro_value(value, decimals, source) | {"description": description}


def verdict(p99_ms: float | None, target_ms: float | None, missing: int = 0) -> str:
    """``met`` when the P99 is at most the target and no alert is missing; ``not measured``
    without a P99 (no alert of the kind arrived) or a target; else ``not met``."""
    if p99_ms is None or target_ms is None:
        return NOT_MEASURED
    return MET if p99_ms <= target_ms and not missing else NOT_MET


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _target_entries(bench: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """The targets (seconds, as the issue states them) and whether each was met."""
    targets = bench.get("targets_ms") or {}
    critical_ms, window_ms = targets.get("critical_p99"), targets.get("window_p99")
    critical = verdict(
        _value(bench, "critical.webhook_ms.p99"),
        critical_ms,
        _value(bench, "critical.missing_webhook") or 0,
    )
    window = verdict(_value(bench, "window.webhook_ms.p99"), window_ms)
    return {
        "LiveTargetCriticalSeconds": _entry(
            _seconds(critical_ms), PLAIN, f"{source}: targets_ms.critical_p99", "target (s)"
        ),
        "LiveTargetWindowSeconds": _entry(
            _seconds(window_ms), PLAIN, f"{source}: targets_ms.window_p99", "target (s)"
        ),
        "LiveCriticalVerdict": _entry(
            critical, None, f"{source}: critical", "critical-alert target met?"
        ),
        "LiveWindowVerdict": _entry(window, None, f"{source}: window", "window-alert target met?"),
    }


def _plus_seconds(ms: Any, seconds: Any) -> float | None:
    """``ms`` plus ``seconds``, in seconds; None if either is missing."""
    return None if ms is None or seconds is None else float(ms) / 1000 + float(seconds)


def _ward_entries(bench: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """What a window alert costs a ward in wall-clock time at real-time speed: from the
    window's end to the webhook (the watermark's wait plus the measured processing), and from
    the window's first reading (the window's length on top). A quantile shifted by a constant
    is the constant plus the quantile, so these are exact, not approximations."""
    watermark, window = _value(bench, "watermark_s"), _value(bench, "window_s")
    entries = {}
    for tag, key in (("Pfifty", "p50"), ("Pninetynine", "p99")):
        after_end = _plus_seconds(_value(bench, f"window.webhook_ms.{key}"), watermark)
        after_start = None if after_end is None else _plus_seconds(after_end * 1000, window)
        where = f"{source}: watermark_s + window.webhook_ms.{key}"
        entries[f"LiveWindowAfterEnd{tag}"] = _entry(
            after_end, 1, where, f"window end → webhook, {key} (s)"
        )
        entries[f"LiveWindowAfterStart{tag}"] = _entry(
            after_start, 1, f"{where} + window_s", f"window start → webhook, {key} (s)"
        )
    return entries


def paper_values(bench: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """Macro values (``Live…``) of one bench-live JSON; ``source`` names its file."""
    values = {
        m.name: _entry(_value(bench, m.key), m.decimals, f"{source}: {m.key}", m.description)
        for m in MACROS
    }
    return values | _target_entries(bench, source) | _ward_entries(bench, source)


def check_png(screenshot: Path) -> None:
    """Refuse a screenshot that is not a PNG (a browser's error page saved under its name)."""
    with screenshot.open("rb") as fh:
        if fh.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            raise UsageError(f"argument --screenshot: {screenshot} is not a PNG image")


def copy_screenshot(screenshot: Path, figure: Path) -> Path:
    """The screenshot as the paper's figure; a file that is not a PNG is refused."""
    check_png(screenshot)
    figure.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, figure)
    return figure


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "live-values", help="the running-system section's values and dashboard figure"
    )
    parser.add_argument("--bench", type=json_file, required=True, help="bench-live's JSON")
    parser.add_argument("--out", type=writable_file, required=True, help="the values file")
    parser.add_argument("--screenshot", type=existing_file, help="bench-live's PNG")
    parser.add_argument("--figure", type=writable_file, help="copy the PNG here (the paper's)")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    if (args.screenshot is None) != (args.figure is None):
        raise UsageError("arguments --screenshot and --figure go together")
    bench = json.loads(args.bench.read_text())
    if not isinstance(bench, dict):
        raise UsageError(f"argument --bench: {args.bench} holds no JSON object")
    require_keys("--bench", bench, REQUIRED_KEYS)
    if args.screenshot is not None:
        check_png(args.screenshot)  # before any output: a refused run writes nothing
    write_values(paper_values(bench, str(args.bench)), args.out)
    if args.figure is not None:
        copy_screenshot(args.screenshot, args.figure)
    print(json.dumps({"values": str(args.out), "figure": str(args.figure)}))
    return 0
