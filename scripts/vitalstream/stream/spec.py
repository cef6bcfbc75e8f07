"""What one run of the streaming job is: its settings (JobSpec) and the columns of its outputs.

Not for: building queries (vitalstream.stream.parse, .windows, .job).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vitalstream.core.devices import DeviceFormat
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.runsettings import ConditionSettings
from vitalstream.core.schema import VITAL_NAMES
from vitalstream.core.settings import MessageChecks, SearchSink

IDENTITY_FIELDS = ("kind", "patient_id", "device_id", "consciousness")
REQUIRED_FIELDS = ("patient_id", "event_time_ms", "send_wall_ns")
WINDOW_STATS = ("n", "mean", "min", "max", "sd")
# A reading's identity: a second message with the same key is a duplicate, dropped (and counted)
# by the stream's windows query and by the batch reference alike.
DUPLICATE_KEY = ("patient_id", "device_id", "event_time")
EVENT_OUTPUT_COLUMNS = (
    "patient_id",
    "device_id",
    "event_time",
    *VITAL_NAMES,
    "o2_supplemental",
    "consciousness",
    "send_wall_ns",
)
READING_COLUMNS = (
    *EVENT_OUTPUT_COLUMNS,
    "value",
    "reason",
    "partition",
    "offset",
    "kafka_time",
    "fired_rules",
)
ALERT_COLUMNS = (
    "alert_id",
    "patient_id",
    "kind",
    "rule",
    "severity",
    "column",
    "value",
    "threshold",
    "time",
    "window_start",
    "window_end",
    "last_event_time",
    "last_send_wall_ns",
    "suppressed",
)


@dataclass(frozen=True)
class JobSpec:
    """Everything one run of the job needs; built from a condition's parameters."""

    bootstrap_servers: str
    topic: str
    out_dir: Path
    window_s: float
    watermark_s: float
    diagnostics: DiagnosticsSpec = field(default_factory=DiagnosticsSpec)
    slide_s: float | None = None
    trigger_ms: int = 0
    max_offsets_per_trigger: int | None = None
    alerts_topic: str | None = None
    raw_events: bool = False
    # "append": a window is written once, when the watermark closes it (final values).
    # "update": every micro-batch writes the windows it changed (provisional values; the
    # sequential change and anomaly rules, which need final windows, are then skipped).
    output_mode: str = "append"
    # "microbatch": the two queries above. "realtime": Spark's real-time mode (4.1+), which
    # runs stateless queries only: just the critical-reading path, alerts to alerts_topic.
    trigger_mode: str = "microbatch"
    # Kafka consumer fetch wait (fetch.max.wait.ms); None = Kafka's default, 500 ms. Each
    # micro-batch task reads one partition up to the log end, where the broker holds the
    # fetch this long: about a quarter second per partition per batch on two cores.
    fetch_max_wait_ms: int | None = None
    # Further options of the Kafka source, verbatim (condition ``consumer.options``).
    source_options: dict[str, str] = field(default_factory=dict)
    # Prefix of the Spark query names: jobs sharing one session (experiments.siblings) need
    # names of their own.
    query_prefix: str = ""
    # False: the windows query alone. Jobs that share a replay and differ only in window
    # settings run the per-reading query once (experiments.siblings): its output does not
    # depend on them.
    readings_query: bool = True
    # Where the sinks also index alerts and windows (vitalstream.sinks.search); None = nowhere.
    search: SearchSink | None = None
    # What a message must satisfy beyond its schema (config ``checks``; vitalstream.stream.parse).
    checks: MessageChecks = field(default_factory=MessageChecks)
    # The device fields read besides the canonical message (config ``devices``; core.devices).
    devices: DeviceFormat = field(default_factory=DeviceFormat)
    # Which statistics of each vital the windows carry (a subset of WINDOW_STATS; the counts
    # always, since a mean needs them). Fewer aggregates are a lever of the breakdown
    # (breakdown.levers: ``window_stats``): the scores, rules and risk model read no sd.
    window_stats: tuple[str, ...] = WINDOW_STATS

    @classmethod
    def from_condition(
        cls,
        condition: ConditionSettings,
        diagnostics: DiagnosticsSpec,
        *,
        bootstrap_servers: str,
        topic: str,
        out_dir: Path,
        alerts_topic: str | None,
        raw_events: bool,
        search: SearchSink | None = None,
        checks: MessageChecks | None = None,
        devices: DeviceFormat | None = None,
    ) -> JobSpec:
        """The job of one run: a condition's settings, the diagnostics, the message checks and
        the device format (None: their defaults), plus where it reads and writes (the runner
        decides its sinks)."""
        return cls(
            bootstrap_servers=bootstrap_servers,
            topic=topic,
            out_dir=out_dir,
            window_s=condition.window_s,
            slide_s=condition.slide_s,
            watermark_s=condition.watermark_s,
            trigger_ms=condition.trigger_ms,
            max_offsets_per_trigger=condition.max_offsets_per_trigger,
            diagnostics=diagnostics,
            alerts_topic=alerts_topic,
            raw_events=raw_events,
            search=search,
            output_mode=condition.output_mode,
            trigger_mode=condition.trigger_mode,
            fetch_max_wait_ms=condition.consumer.fetch_max_wait_ms,
            source_options=dict(condition.consumer.options),
            checks=checks if checks is not None else MessageChecks(),
            devices=devices if devices is not None else DeviceFormat(),
        )

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)

    def path(self, name: str) -> Path:
        """An output of the run: windows, alerts, deadletter, events, state, commits.jsonl."""
        return self.out_dir / name

    def checkpoint(self, query: str) -> str:
        return str(self.out_dir / "checkpoints" / query)
