"""Progress lines (vitalstream.core.progress): the format, the rate limit, reading them back."""

from __future__ import annotations

import io
from pathlib import Path

from vitalstream.core import progress


class FakeClock:
    """A clock the test advances: the rate limit is checked without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _records(text: str) -> list[dict]:
    return [r for r in map(progress.parse_line, text.splitlines()) if r is not None]


def test_a_line_is_json_after_the_prefix_and_parses_back() -> None:
    line = progress.format_line("replay", done=9000, total=20000, unit="readings", step=None)
    assert line == 'PROGRESS {"task": "replay", "done": 9000, "total": 20000, "unit": "readings"}'
    assert progress.parse_line(line) == {
        "task": "replay",
        "done": 9000,
        "total": 20000,
        "unit": "readings",
    }


def test_a_line_after_a_log_prefix_is_found_and_other_lines_are_not() -> None:
    stamped = '2026-12-07 03:41:02 INFO PROGRESS {"task": "cv", "done": 2, "total": 5}\n'
    assert progress.parse_line(stamped) == {"task": "cv", "done": 2, "total": 5}
    assert progress.parse_line("replay skeleton: 10/20 sent") is None
    assert progress.parse_line('PROGRESS {"task": "replay", "done": 9') is None  # cut off
    assert progress.parse_line('PROGRESS {"done": 9}') is None  # no task
    assert progress.parse_line("PROGRESS [1, 2]") is None


def test_updates_are_rate_limited_but_the_first_and_the_last_are_printed() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = progress.Progress("replay", 100, "readings", every_s=5.0, stream=out, clock=clock)
    for second in range(13):  # one update a second, 0..12 s
        clock.now = float(second)
        bar.update(second * 5)
    assert [r["done"] for r in _records(out.getvalue())] == [0, 25, 50]
    clock.now = 12.5
    assert bar.update(100) is True  # the last one is never held back
    assert bar.finish() is False  # nothing pending
    assert [r["done"] for r in _records(out.getvalue())] == [0, 25, 50, 100]


def test_finish_prints_the_state_the_limit_held_back() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = progress.Progress("ramp", None, "steps", every_s=5.0, stream=out, clock=clock)
    bar.update(1, rate=1000)
    clock.now = 1.0
    assert bar.update(2, rate=2000) is False
    assert bar.update(3, rate=4000, force=True) is True  # a forced line (a phase change)
    clock.now = 2.0
    bar.update(4, rate=8000)
    assert bar.finish() is True
    assert [(r["done"], r["rate"]) for r in _records(out.getvalue())] == [
        (1, 1000),
        (3, 4000),
        (4, 8000),
    ]
    assert "total" not in _records(out.getvalue())[0]  # None fields are left out


def test_last_progress_reads_the_newest_line_among_other_output(tmp_path: Path) -> None:
    log = tmp_path / "rule.log"
    with log.open("w") as fh:
        fh.write("Spark starting\n")
        for done in (1000, 2000, 3000):
            progress.emit("replay", fh, done=done, total=4000, unit="readings")
            fh.write("WARN some Spark message\n" * 50)
    record = progress.last_progress(log)
    assert record is not None and record["done"] == 3000
    assert progress.fraction(record) == 0.75
    assert progress.last_progress(tmp_path / "missing.log") is None


def test_fraction_needs_a_positive_total() -> None:
    assert progress.fraction({"task": "x", "done": 3}) is None
    assert progress.fraction({"task": "x", "done": 3, "total": 0}) is None
    assert progress.fraction({"task": "x", "done": 7, "total": 5}) == 1.0
