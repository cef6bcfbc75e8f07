"""LaTeX macros: every number the paper's text uses, generated from result files.

Each macro is declared once below with the file it comes from, the key path inside that file and
how many decimals it shows. ``write_macros`` resolves them into ``\\newcommand`` lines, each
followed by a comment naming its source, so a reader of macros.tex (or a test) can check any
number against the JSON it came from. Nobody types a measured number into the paper.

Not for: tables and figures (notebooks make those).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[A-Za-z]+$")


@dataclass(frozen=True)
class Macro:
    """``\\name`` = value at ``key`` (dot path) of the source file, with ``decimals`` shown.

    ``decimals=None`` prints the value as text (versions, hashes, dates).
    """

    name: str
    source: str
    key: str
    decimals: int | None = 0
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"LaTeX macro names are letters only: {self.name!r}")


# Sources: "metrics" and "provenance" of the headline run (config paper.headline_run).
RUN_MACROS: tuple[Macro, ...] = (
    Macro("RunPatients", "metrics", "patients", 0, "patients with at least one window"),
    Macro("RunHours", "metrics", "event_time_span_h", 1, "hours of patient time replayed"),
    Macro("RunEvents", "metrics", "events_produced", 0, "readings the producer sent"),
    Macro("RunEventsProcessed", "metrics", "events_processed", 0, "readings Spark read, valid"),
    Macro("RunQuarantined", "metrics", "quarantined", 0, "messages sent to the dead letter"),
    Macro("RunWindows", "metrics", "windows", 0, "window rows written"),
    Macro("RunAlerts", "metrics", "alerts", 0, "alerts written"),
    Macro("RunAlertPatients", "metrics", "alert_patients", 0, "patients with an alert"),
    Macro("RunProducerRate", "metrics", "producer_rate", 0, "producer messages/s"),
    Macro("RunSparkRate", "metrics", "spark_rate", 0, "rows/s read by Spark"),
    Macro("RunLatencyPfifty", "metrics", "alert_latency_ms.p50", 0, "alert latency P50, ms"),
    Macro("RunLatencyPninety", "metrics", "alert_latency_ms.p90", 0, "alert latency P90, ms"),
    Macro("RunLatencyPninetynine", "metrics", "alert_latency_ms.p99", 0, "alert latency P99, ms"),
    Macro("RunWindowSeconds", "metrics", "condition.window_s", 0, "window length, s"),
    Macro("RunWatermarkSeconds", "metrics", "condition.watermark_s", 0, "watermark, s"),
    Macro("RunKafkaPartitions", "metrics", "condition.kafka_partitions", 0, "topic partitions"),
    Macro("RunSpeedup", "metrics", "condition.speedup", 0, "event-time acceleration"),
    Macro(
        "RunShufflePartitions",
        "provenance",
        "spark_conf.spark.sql.shuffle.partitions",
        0,
        "Spark shuffle partitions",
    ),
    Macro("SparkVersion", "provenance", "packages.pyspark", None, "pyspark version"),
    Macro("KafkaVersion", "provenance", "kafka.version", None, "Kafka broker version"),
    Macro("PythonVersion", "provenance", "machine.python", None, "Python version"),
    Macro("MachineCores", "provenance", "machine.cores", 0, "logical cores"),
    Macro("MachineMemoryGiB", "provenance", "machine.memory_gib", 0, "memory, GiB"),
    Macro("GitCommit", "provenance", "git.short", None, "git commit of the run"),
    Macro("RunDate", "provenance", "date_utc", None, "date of the run (UTC)"),
)


def lookup(data: Mapping[str, Any], key: str) -> Any:
    """Value at a dot path; a segment may itself contain dots (Spark conf keys), and in a list
    ``k=v`` selects the item whose ``k`` is ``v`` (``window_rules.name=tachycardia``)."""
    if isinstance(data, list):
        head, _, rest = key.partition(".")
        field_name, _, wanted = head.partition("=")
        for item in data:
            if isinstance(item, Mapping) and str(item.get(field_name)) == wanted:
                return lookup(item, rest) if rest else item
        raise KeyError(key)
    if not isinstance(data, Mapping):
        raise KeyError(key)
    if key in data:
        return data[key]
    head, _, rest = key.partition(".")
    while rest:
        if head in data and isinstance(data[head], Mapping | list):
            try:
                return lookup(data[head], rest)
            except KeyError:
                pass
        part, _, rest = rest.partition(".")
        head = f"{head}.{part}"
    if head in data:
        return data[head]
    raise KeyError(key)


def format_value(value: Any, decimals: int | None) -> str:
    """The macro body: a plain number (siunitx formats it in the text) or escaped text."""
    if value is None:
        return "n/a"
    if decimals is None:
        text = str(value)
        if "T" in text and text[:4].isdigit():  # an ISO timestamp: the date is enough
            text = text.split("T")[0]
        return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
    return f"{float(value):.{decimals}f}"


def resolve(macros: Sequence[Macro], sources: Mapping[str, Path]) -> list[dict[str, Any]]:
    """Each macro with its value, formatted body and source (file and key)."""
    loaded = {name: json.loads(Path(path).read_text()) for name, path in sources.items()}
    rows = []
    for macro in macros:
        try:
            value = lookup(loaded[macro.source], macro.key)
        except KeyError as exc:
            raise KeyError(
                f"macro \\{macro.name}: no key {macro.key!r} in {sources[macro.source]}"
            ) from exc
        rows.append(
            {
                "name": macro.name,
                "value": value,
                "body": format_value(value, macro.decimals),
                "decimals": macro.decimals,
                "file": str(sources[macro.source]),
                "key": macro.key,
                "description": macro.description,
            }
        )
    return rows


def render(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "% Generated by `python -m vitalstream macros` (rule write_macros). Do not edit.",
        "% Each macro is followed by the result file and key it comes from.",
    ]
    for row in rows:
        lines.append(
            f"\\newcommand{{\\{row['name']}}}{{{row['body']}}} % {row['file']}:{row['key']}"
        )
    return "\n".join(lines) + "\n"


def macro_value(raw: Any, decimals: int | None, source: str) -> dict[str, Any]:
    """One entry of a values file (see :func:`read_values`): a value a run lacks prints as
    ``n/a`` instead of failing the paper."""
    if raw is None:
        return {"value": "n/a", "decimals": None, "source": source}
    return {"value": raw, "decimals": decimals, "source": source}


def read_values(path: Path) -> list[dict[str, Any]]:
    """Macros a notebook computed: ``{Name: {"value", "decimals", "source", "description"}}``.

    ``source`` names the result file (and key) the value was computed from, so that the comment
    in macros.tex points a reader at it. Names must be letters only and not clash.
    """
    rows = []
    for name, spec in json.loads(Path(path).read_text()).items():
        Macro(name, "values", "value")  # validates the name
        decimals = spec.get("decimals", 0)
        rows.append(
            {
                "name": name,
                "value": spec["value"],
                "body": format_value(spec["value"], decimals),
                "decimals": decimals,
                "file": str(path),
                "key": name,
                "source": spec.get("source", ""),
                "description": spec.get("description", ""),
            }
        )
    return rows


def write_macros(
    sources: Mapping[str, Path],
    out_tex: Path,
    out_json: Path,
    values: Sequence[Path] = (),
) -> list[dict]:
    rows = resolve(RUN_MACROS, sources)
    for path in values:
        rows += read_values(path)
    names = [row["name"] for row in rows]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"macro names defined twice: {clashes}")
    out_tex.parent.mkdir(parents=True, exist_ok=True)
    out_tex.write_text(render(rows))
    out_json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return rows


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("macros", help="write the paper's \\newcommand macros")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--provenance", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="macros.tex")
    parser.add_argument("--out-json", type=Path, required=True, help="macros.json (sidecar)")
    parser.add_argument(
        "--values",
        type=Path,
        nargs="*",
        default=[],
        help="notebooks' *_values.json files with more macros",
    )
    parser.set_defaults(func=_cli_macros)


def _cli_macros(args: argparse.Namespace) -> int:
    rows = write_macros(
        {"metrics": args.metrics, "provenance": args.provenance},
        args.out,
        args.out_json,
        values=args.values,
    )
    print(json.dumps({"macros": len(rows), "out": str(args.out)}))
    return 0
