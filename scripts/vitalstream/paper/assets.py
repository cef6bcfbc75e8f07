"""Paper assets written from the configuration: the pipeline figure and the definition tables.

The Methods section must not describe a pipeline or a rule set that the code does not run, so
nothing here is drawn or typed by hand:

* :func:`pipeline_tikz` writes the pipeline figure (a bare ``tikzpicture``) from the headline
  condition (partitions, speedup, window, slide, watermark, trigger, optional sinks) and the
  ``diagnostics`` block (rule counts and names, suppression interval). Its boxes follow the
  structure of vitalstream.stream.job: the queries ``windows`` and ``readings``, their
  ``foreachBatch`` sinks and the outputs of a run (:data:`WINDOWS_QUERY`, :data:`OUTPUTS`; a
  unit test checks them against the streaming and experiment modules, which are not imported
  here because they need the streaming environment).
* :func:`rules_table` lists every diagnostic rule with its condition as the rule itself states
  it (``describe()``), so the table cannot disagree with what the job evaluates.
* :func:`scores_table` prints the score tables from :func:`core.scores.score_table_rows`,
  the same rows that drive both engines, one row per parameter.

The paper wraps each file in its own float (captions stay in the paper). ``paper-assets`` writes
all three; the workflow's rule ``write_paper_assets`` passes the config slice they depend on as
params, so a config change regenerates them and nothing else.

Not for: measured numbers (vitalstream.paper.macros) or result tables (notebooks).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import writable_dir
from vitalstream.core.config import (
    RunId,
    add_config_arguments,
    condition_params,
    config_from_args,
    expand_runs,
)
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.schema import CONSCIOUSNESS_LEVELS, VITAL_NAMES
from vitalstream.core.scores import (
    SCORE_COLUMNS,
    CategoryTable,
    ParameterTable,
    score_spec_from_config,
    score_table_rows,
)
from vitalstream.core.tables import escape, write

# Structure of the streaming job (vitalstream.stream.job.start_job / Sinks), mirrored here so
# that this module runs in the light paper environment; tests/unit/test_paper_tables.py checks
# them against the streaming code.
WINDOWS_QUERY = "windows"
READINGS_QUERY = "readings"
WINDOW_STATS = ("n", "mean", "min", "max", "sd")
OUTPUTS = ("windows", "alerts", "deadletter", "events", "state", "commits.jsonl")

FILES = {
    "figure": "fig_pipeline.tex",
    "rules": "tab_rules.tex",
    "scores": "tab_scores.tex",
}

# Unicode the rule and score descriptions use, as LaTeX (pdflatex knows none of them), and the
# comparison operators of ThresholdRule.describe as math. Longest first, so ">=" wins over ">".
_SYMBOLS = {
    ">=": r"$\ge$",
    "<=": r"$\le$",
    "==": "$=$",
    ">": "$>$",
    "<": "$<$",
    "≥": r"$\ge$",
    "≤": r"$\le$",
    "Δ": r"$\Delta$",
    "α": r"$\alpha$",
    "–": "--",
    "°": r"\textdegree{}",
    "×": r"$\times$",
    "|": "$|$",
}
_SYMBOL_PATTERN = re.compile("|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len)[::-1]))
_VARIABLE = re.compile(r"(?<![\\A-Za-z])v(?![A-Za-z])")


def latex_text(text: object) -> str:
    """Plain text (rule descriptions, score ranges) as LaTeX: escaped, symbols as math."""
    escaped = escape(text).replace("SpO2", r"SpO\textsubscript{2}")
    return _SYMBOL_PATTERN.sub(lambda m: _SYMBOLS[m.group(0)], escaped)


def tt(name: object) -> str:
    """An identifier (rule, column, directory) in typewriter type, escaped."""
    return rf"\texttt{{{escape(name)}}}"


def condition(rule: Any) -> str:
    """A rule's ``describe()`` as LaTeX, with the column it reads in typewriter type."""
    before, column, after = rule.describe().partition(rule.column)
    if not column:
        return latex_text(before)
    return latex_text(before) + tt(column) + latex_text(after)


def _num(value: float) -> str:
    return f"{float(value):g}"


def headline_condition(config: Mapping[str, Any]) -> tuple[RunId, dict[str, Any]]:
    """The run the paper describes (``paper.headline_run``, else the grid's first run) and its
    condition's parameters: the figure shows the pipeline as that run configured it."""
    text = config.get("paper", {}).get("headline_run")
    run = RunId.parse(text) if text else expand_runs(config)[0]
    return run, condition_params(config, run)


def _diagnostics(config: Mapping[str, Any]) -> DiagnosticsSpec:
    return DiagnosticsSpec.from_config(config.get("diagnostics", {}))


# --------------------------------------------------------------------------------------------
# Pipeline figure
# --------------------------------------------------------------------------------------------

# Geometry (mm). \linewidth of an 11pt a4 article with 25 mm margins is 160 mm; the picture
# spans x = 0.._WIDTH. Inside the Spark frame: a left channel for the arrow to the readings
# query (it must pass the windows query), then four columns of boxes.
_WIDTH = 159.0
_PAD = 1.5
_CHANNEL = 4.0
_COLUMNS = 4
_GAP = 4.5
_COL = (_WIDTH - 2 * _PAD - _CHANNEL - (_COLUMNS - 1) * _GAP) / _COLUMNS
_TOP_GAP = 8.0
_INNER = 1.2
_ROW_GAP = 7.0
# Line heights (mm) of \footnotesize and \scriptsize in an 11pt document (11 pt, 9.5 pt).
_LINE = {"f": 3.9, "s": 3.4}


def _col_x(i: int) -> float:
    """Centre of column i (0-based)."""
    return _PAD + _CHANNEL + _COL / 2 + i * (_COL + _GAP)


_COMMAND = re.compile(r"\\[a-zA-Z]+|[{}$\\^]")
# Average character width (mm) of \footnotesize bold and roman and \scriptsize text, rounded up.
_CHAR = {"b": 1.75, "f": 1.55, "s": 1.45}


def _wrapped(text: str, width: float, size: str) -> int:
    """Lines ``text`` takes in a box of ``width`` mm (greedy by words): the height estimate
    keeps the boxes of a row equally high without TeX measuring them."""
    visible = _COMMAND.sub("", text.replace(r"\_", "_").replace(r"\,", ""))
    lines, used = 1, 0.0
    for word in visible.split():
        size_mm = len(word) * _CHAR[size]
        if used and used + _CHAR[size] + size_mm > width:
            lines, used = lines + 1, size_mm
        else:
            used += (_CHAR[size] if used else 0.0) + size_mm
    return lines


class _Box:
    """A box's text: a bold title line and detail lines (\\footnotesize, then \\scriptsize)."""

    def __init__(self, title: str, *lines: str, small: Sequence[str] = ()) -> None:
        self.title = title
        self.lines = [line for line in lines if line]
        self.small = [line for line in small if line]

    def height(self, width: float) -> float:
        """Estimated height (mm) in a box ``width`` wide; boxes of a row share the largest."""
        text_width = width - 2 * _INNER
        normal = _wrapped(self.title, text_width, "b")
        normal += sum(_wrapped(t, text_width, "f") for t in self.lines)
        small = sum(_wrapped(t, text_width, "s") for t in self.small)
        return round(_LINE["f"] * normal + _LINE["s"] * small + 2 * _INNER + 0.6, 1)

    def body(self) -> str:
        parts = [rf"\textbf{{{self.title}}}", *self.lines]
        body = r"\\ ".join(parts)
        if self.small:
            body += r"\\ {\scriptsize " + r"\\ ".join(self.small) + "}"
        return body


def _node(
    name: str, box: _Box, x: float, at: str, size: tuple[float, float], style: str, dy: float = 0
) -> str:
    """A box of ``size`` (width, minimum height) whose top centre is (x, dy) mm from ``at``."""
    text_width = size[0] - 2 * _INNER
    return (
        rf"  \node[{style}, text width={text_width:.1f}mm, minimum height={size[1]:.1f}mm]"
        rf" ({name}) at ([xshift={x:.1f}mm, yshift={dy:.1f}mm]{at}) {{{box.body()}}};"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _boxes(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, _Box]:
    """The text of every box, from the condition's parameters and the diagnostics."""
    spec = _diagnostics(config)
    cohort_name = params["cohort"]
    cohort = config.get("cohorts", {}).get(cohort_name, {})
    sources = config.get("physionet", {}).get("sources", [])
    sinks = params.get("sinks", {})
    raw_events = bool(sinks.get("raw_events", False))
    alerts_topic = bool(sinks.get("alerts_topic", True))
    slide = params.get("slide_s")
    suppression = (
        rf"suppression {_num(spec.suppression_s)}\,s" if spec.suppression_s else "no suppression"
    )
    boxes: dict[str, _Box] = {
        "data": _Box(
            "Input data",
            f"cohort {tt(cohort_name)}"
            + (f": {cohort['patients']} patients, {_num(cohort['hours'])}\\,h" if cohort else ""),
            small=[f"or PhysioNet ({_plural(len(sources), 'source')})"] if sources else [],
        ),
        "producer": _Box(
            "Replay producer",
            rf"accelerated clock, $s = {_num(params['speedup'])}$",
            r"send stamp $t^{\mathrm{send}}$ per message",
        ),
        "kafka": _Box(
            "Kafka topic",
            f"{_plural(params['kafka_partitions'], 'partition')}, key = patient",
            "ordered per partition",
        ),
        "parse": _Box(
            r"Read topic, parse and validate \textmd{(each query):} \textmd{JSON against the"
            r" event schema; types, required fields, physiological ranges; a bad message"
            r" keeps its reason}",
        ),
        "windows": _Box(
            "Event-time windows",
            (f"sliding, slide {_num(slide)}\\,s" if slide else "tumbling")
            + rf", $w = {_num(params['window_s'])}$\,s",
            rf"watermark $d = {_num(params['watermark_s'])}$\,s",
            small=[
                f"{', '.join(s for s in WINDOW_STATS if s != 'n')} of {len(VITAL_NAMES)} vitals"
            ],
        ),
        "wsink": _Box(
            r"Sink \textmd{(foreachBatch)}",
            _plural(len(spec.change_rules), "change rule"),
            _plural(len(spec.anomaly), "EWMA detector"),
            suppression,
            small=["per-patient state"],
        ),
        "readings": _Box(
            "Critical readings",
            _plural(len(spec.reading_rules), "reading rule"),
            small=["per message, no window"],
        ),
        "rsink": _Box(
            r"Sink \textmd{(foreachBatch)}",
            suppression,
            "dead letter + reason",
            small=["raw events" + ("" if raw_events else " (off)")],
        ),
        "outevents": _Box(tt("events/"), "by date, hour" if raw_events else "off"),
        "outdead": _Box(tt("deadletter/"), "message + reason"),
        "outalerts": _Box(
            tt("alerts/") + " + topic",
            "all, flag suppressed;",
            "topic: emitted only" if alerts_topic else "topic: off",
        ),
        "outwindows": _Box(tt("windows/"), "values + scores"),
    }
    on_scores = sum(r.column in SCORE_COLUMNS for r in spec.window_rules)
    boxes["rules"] = _Box(
        _plural(len(spec.window_rules), "threshold rule"),
        f"{len(spec.window_rules) - on_scores} on window values,",
        f"{on_scores} on scores",
        small=["evaluated by Spark"],
    )
    if spec.scores:
        score_spec = score_spec_from_config(spec.scores)
        groups = (score_spec.news2, score_spec.qsofa, score_spec.sirs, score_spec.mews)
        boxes["scores"] = _Box(
            "Scores",
            "NEWS2, qSOFA,",
            "SIRS, MEWS",
            small=[", ".join(str(len(g)) for g in groups) + " parameters"],
        )
    else:
        boxes["scores"] = _Box("Scores", "none configured")
    return boxes


def pipeline_tikz(config: Mapping[str, Any]) -> str:
    """The pipeline as a bare ``tikzpicture`` (TikZ core only: no library to load).

    Labels come from the headline condition and the diagnostics block, so a change of window,
    slide, watermark, partitions, speedup, rule counts, suppression or optional sinks in config
    changes the figure. Boxes are placed on a fixed grid; a row shares the tallest estimated
    height so that its arrows stay horizontal.
    """
    run, params = headline_condition(config)
    boxes = _boxes(config, params)
    trigger_ms = int(params.get("trigger_ms", 0))
    trigger = "back to back" if trigger_ms == 0 else rf"every {trigger_ms}\,ms"
    sinks = params.get("sinks", {})
    top_w = (_WIDTH - 2 * _TOP_GAP) / 3
    inner = _WIDTH - 2 * _PAD
    top = ("data", "producer", "kafka")
    row1 = ("windows", "scores", "rules", "wsink")
    row2 = {"readings": 1, "rsink": 2}
    outputs = {"outevents": 0, "outdead": 1, "outalerts": 2, "outwindows": 3}
    top_h = max(boxes[n].height(top_w) for n in top)
    row1_h = max(boxes[n].height(_COL) for n in row1)
    row2_h = max(boxes[n].height(_COL) for n in row2)
    out_h = max(boxes[n].height(_COL) for n in outputs)
    lines = [
        "% Generated by vitalstream.paper.assets (rule write_paper_assets) from the",
        f"% configuration; headline run {run.path}. Do not edit.",
        r"\begin{tikzpicture}[",
        r"    font=\footnotesize, >=stealth, line width=0.5pt,",
        r"    box/.style={draw, rounded corners=1.5pt, align=center, anchor=north,"
        rf" inner sep={_INNER}mm}},",
        r"    off/.style={box, dashed, text=black!60},",
        r"    flow/.style={->, thick},",
        r"    lbl/.style={font=\scriptsize\itshape, inner sep=1pt}]",
        r"  \coordinate (o) at (0,0);",
    ]
    for i, name in enumerate(top):
        x = top_w / 2 + i * (top_w + _TOP_GAP)
        lines.append(_node(name, boxes[name], x, "o", (top_w, top_h), "box"))
    lines += [
        r"  \draw[flow] (data.east) -- (data.east -| producer.west);",
        r"  \draw[flow] (producer.east) -- (producer.east -| kafka.west);",
        r"  \begin{scope}[local bounding box=spark]",
        rf"  \node[anchor=north west, inner sep=0pt] (sparktitle) at ([xshift={_PAD}mm,"
        rf" yshift=-{_TOP_GAP + 1.5:.1f}mm]o |- data.south) {{\textbf{{Spark Structured"
        rf" Streaming}}\quad{{\scriptsize two queries, micro-batches {trigger}}}}};",
        _node(
            "parse",
            boxes["parse"],
            _WIDTH / 2,
            "o |- sparktitle.south",
            (inner, boxes["parse"].height(inner)),
            "box",
            dy=-1.5,
        ),
    ]
    for i, name in enumerate(row1):
        lines.append(
            _node(
                name,
                boxes[name],
                _col_x(i),
                "o |- parse.south",
                (_COL, row1_h),
                "box",
                dy=-_ROW_GAP,
            )
        )
    for name, col in row2.items():
        lines.append(
            _node(
                name,
                boxes[name],
                _col_x(col),
                "o |- windows.south",
                (_COL, row2_h),
                "box",
                dy=-_ROW_GAP,
            )
        )
    lines += [
        r"  \end{scope}",
        r"  \draw[black!50, rounded corners=3pt] ([yshift=1.5mm]o |- spark.north) rectangle"
        rf" ([xshift={_WIDTH}mm, yshift=-1.5mm]o |- spark.south);",
        r"  \draw[flow] (kafka.south) -- (kafka.south |- parse.north);",
        r"  \draw[flow] (windows.north |- parse.south) -- (windows.north)"
        rf" node[lbl, midway, right] {{query \texttt{{{WINDOWS_QUERY}}}: valid readings,"
        r" stateful, append mode (each window written once, when final)};",
        rf"  \draw[flow] ([xshift={_PAD + _CHANNEL / 2:.1f}mm]o |- parse.south) |-"
        rf" (readings.west) node[lbl, pos=0.75, above, align=center]"
        rf" {{query \texttt{{{READINGS_QUERY}}}:\\ every message}};",
        r"  \draw[flow] (windows.east) -- (windows.east -| scores.west);",
        r"  \draw[flow] (scores.east) -- (scores.east -| rules.west);",
        r"  \draw[flow] (rules.east) -- (rules.east -| wsink.west);",
        r"  \draw[flow] (readings.east) -- (readings.east -| rsink.west);",
    ]
    for name, col in outputs.items():
        off = name == "outevents" and not sinks.get("raw_events", False)
        lines.append(
            _node(
                name,
                boxes[name],
                _col_x(col),
                "o |- spark.south",
                (_COL, out_h),
                "off" if off else "box",
                dy=-9,
            )
        )
    lines += [
        r"  \draw[flow] (rsink.south) -- (rsink.south |- outalerts.north);",
        r"  \draw[flow] (rsink.south) ++(0,-1mm) |- ([yshift=4.5mm]outdead.north)"
        r" -- (outdead.north);",
        r"  \draw[flow] (rsink.south) ++(0,-1mm) |- ([yshift=4.5mm]outevents.north)"
        r" -- (outevents.north);",
        r"  \draw[flow] (wsink.south) -- (wsink.south |- outwindows.north);",
        r"  \draw[flow] ([xshift=-8mm]wsink.south) |- ([yshift=3mm]outalerts.north east)"
        r" -- ++(-3mm,0) -- ([xshift=-3mm]outalerts.north east);",
        rf"  \node[anchor=north, font=\scriptsize, inner sep=0pt] at ([xshift={_WIDTH / 2}mm,"
        r" yshift=-1.5mm]o |- outalerts.south) {both sinks also write \texttt{state/}"
        r" (per-patient rule state) and \texttt{commits.jsonl} (commit time of each batch)};",
        r"\end{tikzpicture}",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _tabular(
    widths: Sequence[int],
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    note: str | None = None,
    groups: Sequence[int] = (),
) -> str:
    """A booktabs tabular exactly \\linewidth wide: ragged-right ``p`` columns taking
    ``widths`` per cent of the width left between the column gaps, so that long cells wrap
    instead of running into the margin, and a full-width note row below the body.

    ``groups`` are row indices that start a new group (extra space above). Rows end in
    ``\\tabularnewline`` because ``\\raggedright`` redefines ``\\\\``.
    """
    if sum(widths) != 100 or len(widths) != len(header):
        raise ValueError(f"need one width per column, summing to 100: {widths}")
    gaps = 2 * (len(widths) - 1)
    align = (
        "@{}"
        + "".join(rf"p{{\dimexpr(\linewidth-{gaps}\tabcolsep)*{w}/100\relax}}" for w in widths)
        + "@{}"
    )

    def line(cells: Sequence[str]) -> str:
        return " & ".join(r"\raggedright " + c if c else "" for c in cells) + r" \tabularnewline"

    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", line(header), r"\midrule"]
    for i, row in enumerate(rows):
        if i in groups and i:
            lines.append(r"\addlinespace")
        lines.append(line(row))
    if note is not None:
        lines += [
            r"\midrule",
            rf"\multicolumn{{{len(header)}}}{{@{{}}p{{\linewidth}}@{{}}}}"
            rf"{{\raggedright\footnotesize {note}}} \tabularnewline",
        ]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def rules_table(config: Mapping[str, Any]) -> str:
    """Every rule of ``diagnostics``: name, kind, condition (its ``describe()``), severity, with
    the suppression interval in a note row."""
    spec = _diagnostics(config)
    kinds = (
        ("window threshold", spec.window_rules),
        ("critical reading", spec.reading_rules),
        ("window change", spec.change_rules),
        ("EWMA anomaly", spec.anomaly),
    )
    rows: list[list[str]] = []
    groups: list[int] = []
    for kind, rules in kinds:
        groups.append(len(rows))
        for rule in rules:
            rows.append([tt(rule.name), kind, condition(rule), rule.severity])
    if spec.suppression_s:
        note = (
            rf"Suppression: a repeat of a rule for a patient within "
            rf"{_num(spec.suppression_s)}\,s of event time is kept but not emitted."
        )
    else:
        note = "No suppression: every alert is emitted."
    header = ["Rule", "Kind", "Condition", "Severity"]
    return _tabular((27, 18, 44, 11), header, rows, note, groups)


# Display labels a little shorter than vitalstream.core.scores.PARAMETER_LABELS, so that every
# parameter fits on one line at \linewidth; a parameter not listed keeps the module's label.
_SHORT_LABELS = {
    "rr": "respiration (/min)",
    "spo2": "SpO2, scale 1 (%)",
    "o2": "on oxygen",
    "sbp": "syst. BP (mmHg)",
    "hr": "pulse (/min)",
    "consciousness": "ACVPU",
    "mentation": "altered mentation",
    "temp": "temperature (°C)",
    "avpu": "AVPU",
}


def _acvpu_order(bands: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Category bands with their levels in ACVPU order, whatever order the config mapping had
    (the workflow passes the config as JSON with sorted keys)."""
    rank = {level: i for i, level in enumerate(CONSCIOUSNESS_LEVELS)}
    out = []
    for band in bands:
        levels = sorted(band["charted"].split(", "), key=lambda lv: rank.get(lv, len(rank)))
        out.append({**band, "charted": ", ".join(levels)})
    return sorted(out, key=lambda b: rank.get(b["charted"].split(", ")[0], len(rank)))


def scores_table(config: Mapping[str, Any]) -> str:
    """The score tables (:func:`~vitalstream.core.scores.score_table_rows`), one row per parameter.

    The points cell lists each band as charted (``≤8: 3; 9–11: 1; …``). A window mean is
    continuous, so the last cell says where a band ends for it: the half-step cut point above
    the band's charted upper bound b (b + 0.5, or b + 0.05 at 0.1 °C resolution), the worst
    ACVPU level, or any reading on oxygen. A note row gives one band's window-mean interval as
    :func:`score_table_rows` states it, as a worked example.
    """
    scores = _diagnostics(config).scores
    header = ["Score", "Parameter", "Points by charted value", r"Mean $v$"]
    align = (8, 19, 59, 14)
    if not scores:
        return _tabular(align, header, [["--", "no scores configured", "", ""]])
    spec = score_spec_from_config(scores)
    tables = {
        (score, table.name): table
        for score, group in (
            ("NEWS2", spec.news2),
            ("qSOFA", spec.qsofa),
            ("SIRS", spec.sirs),
            ("MEWS", spec.mews),
        )
        for table in group
    }
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in score_table_rows(spec):
        grouped.setdefault((row["score"], row["parameter"]), []).append(row)
    risk = spec.news2_risk
    thresholds = {
        "NEWS2": (
            "total (risk)",
            rf"$\ge${risk.high_at} high; $\ge${risk.medium_at} medium; "
            rf"a sub-score of {risk.single_parameter}: low--medium; else low",
        ),
        "qSOFA": ("criteria met", rf"$\ge${spec.qsofa_positive_at}: positive"),
        "SIRS": ("criteria met", rf"$\ge${spec.sirs_positive_at}: positive"),
    }
    rows: list[list[str]] = []
    groups: list[int] = []
    example: str | None = None
    for score in dict.fromkeys(score for score, _ in grouped):
        groups.append(len(rows))
        for (group, name), bands in grouped.items():
            if group != score:
                continue
            table = tables[(score, name)]
            if isinstance(table, CategoryTable):
                bands = _acvpu_order(bands)
            points = "; ".join(f"{latex_text(b['charted'])}: {b['points']}" for b in bands)
            if isinstance(table, ParameterTable):
                half = Decimal(repr(table.resolution)) / 2
                mean = rf"$v < b + {half}$"
                if example is None and len(bands) > 2:
                    band = bands[1]
                    example = (
                        f"{score} {latex_text(_SHORT_LABELS.get(name, band['label']))} "
                        f"{latex_text(band['charted'])} holds "
                        + _VARIABLE.sub("$v$", latex_text(band["window_mean"]))
                    )
            elif "level" in " ".join(b["window_mean"] for b in bands):
                mean = "worst level"
            else:  # a flag: "any reading on oxygen"
                mean = latex_text(bands[0]["window_mean"]).replace(" on oxygen", "")
            label = latex_text(_SHORT_LABELS.get(name, bands[0]["label"]))
            first = not rows or len(rows) == groups[-1]
            rows.append([score if first else "", label, points, mean])
        if score in thresholds:
            label, text = thresholds[score]
            rows.append(["", label, text, ""])
    note = None
    if example is not None:
        note = (
            r"$b$: a band's charted upper bound; a window mean $v$ is in the first band whose"
            rf" cut point it is below. Example: {example}."
        )
    return _tabular(align, header, rows, note, groups)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def write_assets(config: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write fig_pipeline.tex, tab_rules.tex and tab_scores.tex into ``out_dir``."""
    makers = {"figure": pipeline_tikz, "rules": rules_table, "scores": scores_table}
    return {key: write(makers[key](config), out_dir / name) for key, name in FILES.items()}


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "paper-assets", help="write the pipeline figure and the rule and score tables"
    )
    add_config_arguments(parser)
    parser.add_argument("--out-dir", type=writable_dir, required=True)
    parser.set_defaults(func=_cli_paper_assets)


def _cli_paper_assets(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    paths = write_assets(config, args.out_dir)
    print(json.dumps({key: str(path) for key, path in paths.items()}))
    return 0
