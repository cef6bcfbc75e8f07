"""The running monitor's settings (config ``live``), parsed once at the edge into typed objects.

``python -m vitalstream up`` reads them; each part of the live system gets the piece it needs:
the delivery loop its ``DeliverySettings``, the simulator its ``SimulateSettings``, the live
benchmark its ``BenchSettings``. Defaults are the schema's ``default:`` keys where it has them,
else the fields' defaults below, so a configuration without a ``live`` block still runs.

Not for: starting anything (vitalstream.serving.up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitalstream.core.paths import REPO_ROOT, in_checkout
from vitalstream.core.settings import (
    build,
    optional,
    parse_integer,
    parse_mapping,
    parse_number,
    parse_string,
    parse_strings,
)


@dataclass(frozen=True)
class DeliverySettings:
    """Webhook delivery (config ``live.delivery``; vitalstream.sinks.webhook)."""

    timeout_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    workers: int = 4

    @classmethod
    def from_config(cls, block: Any, where: str = "live/delivery") -> DeliverySettings:
        parsers = {
            "timeout_s": parse_number,
            "backoff_initial_s": parse_number,
            "backoff_max_s": parse_number,
            "workers": parse_integer,
        }
        return build(cls, block, where, parsers)


@dataclass(frozen=True)
class SimulateSettings:
    """The device simulator of ``up --simulate N`` (config ``live.simulate``)."""

    seed: int = 20261207
    rate_hz: float = 1.0

    @classmethod
    def from_config(cls, block: Any, where: str = "live/simulate") -> SimulateSettings:
        return build(cls, block, where, {"seed": parse_integer, "rate_hz": parse_number})


@dataclass(frozen=True)
class BenchSettings:
    """The live benchmark (config ``live.bench``; ``bench-live``)."""

    patients: int = 1000
    rate_hz: float = 1.0
    seconds: float = 120.0
    critical_per_mille: int = 2
    tachycardic_per_mille: int = 20

    @classmethod
    def from_config(cls, block: Any, where: str = "live/bench") -> BenchSettings:
        parsers = {
            "patients": parse_integer,
            "rate_hz": parse_number,
            "seconds": parse_number,
            "critical_per_mille": parse_integer,
            "tachycardic_per_mille": parse_integer,
        }
        return build(cls, block, where, parsers)


@dataclass(frozen=True)
class LiveSettings:
    """The live system (config ``live``): where it keeps its state, its topics, the job's
    windows, the dashboard's port, the webhooks and their delivery."""

    state_dir: Path = field(default_factory=lambda: _repo_path("results/live", "live/state_dir"))
    topic: str = "vitals.live"
    alerts_topic: str = "alerts.live"
    partitions: int = 2
    dashboard_port: int = 8765
    status_every_s: float = 5.0
    webhooks: tuple[str, ...] = ()
    window_s: float = 60.0
    watermark_s: float = 5.0
    trigger_ms: int = 0
    event_time_max_behind_s: float | None = 86400.0
    index_refresh_ms: int = 250
    restart_backoff_s: float = 2.0
    spark_conf: Mapping[str, Any] = field(default_factory=dict)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
    bench: BenchSettings = field(default_factory=BenchSettings)

    @classmethod
    def from_config(cls, block: Any) -> LiveSettings:
        parsers = {
            "state_dir": _repo_path,
            "topic": parse_string,
            "alerts_topic": parse_string,
            "partitions": parse_integer,
            "dashboard_port": parse_integer,
            "status_every_s": parse_number,
            "webhooks": parse_strings,
            "window_s": parse_number,
            "watermark_s": parse_number,
            "trigger_ms": parse_integer,
            "event_time_max_behind_s": optional(parse_number),
            "index_refresh_ms": parse_integer,
            "restart_backoff_s": parse_number,
            "spark_conf": parse_mapping,
            "delivery": DeliverySettings.from_config,
            "simulate": SimulateSettings.from_config,
            "bench": BenchSettings.from_config,
        }
        return build(cls, block, "live", parsers)


def _repo_path(value: Any, where: str) -> Path:
    """A path of the configuration: relative ones are the repository's, as every rule's are
    (an installed package, outside a checkout: the working directory's)."""
    path = Path(parse_string(value, where)).expanduser()
    if path.is_absolute():
        return path
    return (REPO_ROOT if in_checkout() else Path.cwd()) / path
