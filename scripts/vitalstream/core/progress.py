"""Progress lines of long commands: ``PROGRESS {"task": ..., "done": ..., "total": ...}``.

A workflow rule sends its command's output to its log, so a long run (a replay, a load ramp,
cross-validation) is invisible until it ends. Long commands therefore print one
machine-readable line now and then to stderr (the rule's log), and ``python -m vitalstream
status`` (vitalstream.experiments.status) reads the last one back. The line is JSON after a
fixed prefix, so a reader needs no knowledge of the command that wrote it:

    PROGRESS {"task": "replay", "done": 9000, "total": 20000, "unit": "readings"}

``task`` is required; ``done``, ``total``, ``unit`` and any other field (``step``, ``rate``,
``phase``, ``run``) are optional. A :class:`Progress` prints at most one line per
``every_s`` seconds, plus the first and the last, so a log stays small however often the
caller updates it.

Not for: human-facing logging (commands keep their own messages) or progress bars.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

PREFIX = "PROGRESS "
# A rule's log also holds Spark's and Kafka's messages; the last line is searched this far back.
TAIL_BYTES = 256 * 1024


def format_line(task: str, **fields: Any) -> str:
    """One progress line (no newline); fields that are None are left out."""
    record = {"task": task, **{k: v for k, v in fields.items() if v is not None}}
    return PREFIX + json.dumps(record, default=str)


def emit(task: str, stream: TextIO | None = None, **fields: Any) -> None:
    """Print one progress line now (a phase change, a step start): rare events need no limit."""
    print(format_line(task, **fields), file=stream or sys.stderr, flush=True)


def parse_line(line: str) -> dict[str, Any] | None:
    """The fields of a progress line, or None for any other line (or a damaged one).

    The prefix may follow other text (a logger's time stamp), so a line is found wherever
    ``PROGRESS {`` starts."""
    start = line.find(PREFIX + "{")
    if start < 0:
        return None
    try:
        record = json.loads(line[start + len(PREFIX) :])
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("task"), str):
        return None
    return record


def last_progress(path: Path, tail_bytes: int = TAIL_BYTES) -> dict[str, Any] | None:
    """The last progress line of the file at ``path`` (its last ``tail_bytes``), or None."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - tail_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        record = parse_line(line)
        if record is not None:
            return record
    return None


def fraction(record: Mapping[str, Any]) -> float | None:
    """``done / total`` of a progress record, or None when it has no usable total."""
    done, total = record.get("done"), record.get("total")
    if not isinstance(done, int | float) or not isinstance(total, int | float) or total <= 0:
        return None
    value = float(done) / float(total)
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else None


class Progress:
    """Rate-limited progress of one task: call :meth:`update` as often as convenient.

    A line is printed on the first update, on the one that reaches ``total``, on a forced one
    and otherwise at most once per ``every_s`` seconds; :meth:`finish` prints the last state
    if the final update was held back."""

    def __init__(
        self,
        task: str,
        total: float | None = None,
        unit: str | None = None,
        *,
        every_s: float = 5.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.task, self.total, self.unit = task, total, unit
        self.every_s = every_s
        self.stream = stream
        self.clock = clock
        self.last_print: float | None = None
        self.pending: dict[str, Any] | None = None  # the newest state not printed
        self.lines = 0

    def update(self, done: float, *, force: bool = False, **extra: Any) -> bool:
        """Record ``done`` (and extra fields); print if due. True if a line was printed."""
        state = {"done": done, "total": self.total, "unit": self.unit, **extra}
        now = self.clock()
        final = self.total is not None and done >= self.total
        due = self.last_print is None or now - self.last_print >= self.every_s
        if not (force or final or due):
            self.pending = state
            return False
        emit(self.task, self.stream, **state)
        self.last_print, self.pending = now, None
        self.lines += 1
        return True

    def finish(self) -> bool:
        """Print the newest state if it was held back by the rate limit."""
        if self.pending is None:
            return False
        state, self.pending = self.pending, None
        emit(self.task, self.stream, **state)
        self.lines += 1
        return True
