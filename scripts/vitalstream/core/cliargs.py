"""Command-line argument types shared by the commands, and the one error they all end in.

Why: a bad argument is the user's mistake, not a bug, so it must never end in a traceback (or
worse, in a 26 TiB allocation). Every check here fails the same way: one line naming the
argument, exit status 2 (``python -m vitalstream`` formats it, see ``vitalstream.__main__``).

* ``type=`` validators (:func:`positive_int`, :func:`positive_float`, :func:`fraction`,
  :func:`tcp_port`, :func:`existing_file`, :func:`writable_dir` …) raise
  :class:`argparse.ArgumentTypeError`, which argparse turns into
  ``argument --patients: must be a positive integer, got -1``;
* checks that need several arguments at once (a size that must fit in memory) raise
  :class:`UsageError` from the command; ``__main__`` prints it as one line and exits 2.

``json_argument`` lets an option take JSON either inline (``--spec '{"mode": "sample"}'``, handy
by hand) or from a file (``--spec @results/configs/gateway.json``, what the workflow passes, so
that a rule's command line and its log stay short).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Fraction of the available memory a command may plan to use: the rest is for the interpreter,
# the libraries and the page cache, and estimates of peak use are rough.
MEMORY_HEADROOM = 0.8


class UsageError(ValueError):
    """A bad command line found after parsing (e.g. a size that cannot fit in memory).

    ``__main__`` prints ``vitalstream <command>: error: <message>`` and exits 2, like argparse.
    The message should start with the argument(s) at fault: ``argument --hours: ...``. A
    ValueError, so callers that caught the bad values before keep working.
    """


def _fail(problem: str, text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"must be {problem}, got {text}")


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def _integer(text: str, problem: str) -> int:
    """An integer written as ``12`` or ``1e3`` (integral floats are fine, ``1.5`` is not)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise _fail(problem, text) from None
    if not math.isfinite(value) or value != int(value):
        raise _fail(problem, text)
    return int(value)


def _finite(text: str, problem: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(problem, text) from None
    if not math.isfinite(value):
        raise _fail(problem, text)
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1 (counts: patients, messages, partitions, folds …)."""
    value = _integer(text, "a positive integer")
    if value < 1:
        raise _fail("a positive integer", text)
    return value


def nonnegative_int(text: str) -> int:
    """An integer ≥ 0 (seeds, offsets)."""
    value = _integer(text, "a non-negative integer")
    if value < 0:
        raise _fail("a non-negative integer", text)
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (durations, rates, speed-ups); ``nan`` and ``inf`` are refused."""
    value = _finite(text, "a positive number")
    if value <= 0:
        raise _fail("a positive number", text)
    return value


def nonnegative_float(text: str) -> float:
    """A finite number ≥ 0 (tolerances, thresholds)."""
    value = _finite(text, "a non-negative number")
    if value < 0:
        raise _fail("a non-negative number", text)
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = _finite(text, "a number in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise _fail("a number in [0, 1]", text)
    return value


def tcp_port(text: str) -> int:
    """A TCP port, 1–65535."""
    value = _integer(text, "a TCP port (1-65535)")
    if not 1 <= value <= 65535:
        raise _fail("a TCP port (1-65535)", text)
    return value


def tcp_port_or_any(text: str) -> int:
    """A TCP port, 0–65535; 0 asks for any free port (a server that prints where it listens)."""
    value = _integer(text, "a TCP port (0-65535)")
    if not 0 <= value <= 65535:
        raise _fail("a TCP port (0-65535)", text)
    return value


def port_list(text: str) -> list[int]:
    """Comma-separated TCP ports, e.g. ``9092,9093,9094``."""
    try:
        return [tcp_port(part.strip()) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        raise _fail("comma-separated TCP ports (1-65535)", text) from None


_MEMORY_SIZE = re.compile(r"[1-9][0-9]*[kKmMgGtT]?")


def memory_size(text: str) -> str:
    """A JVM/Spark memory size such as ``512m`` or ``2g``; kept as text for the JVM."""
    if not _MEMORY_SIZE.fullmatch(text.strip()):
        raise _fail("a memory size such as 512m or 2g", text)
    return text.strip()


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer no smaller than ``low`` (e.g. cross-validation needs at least 2 folds)."""

    def bounded_int(text: str) -> int:
        value = _integer(text, f"an integer >= {low}")
        if value < low:
            raise _fail(f"an integer >= {low}", text)
        return value

    return bounded_int


def int_at_most(limit: int) -> Callable[[str], int]:
    """A positive integer no larger than ``limit`` (a count the machine can hold)."""

    def bounded_int(text: str) -> int:
        value = positive_int(text)
        if value > limit:
            raise _fail(f"a positive integer no larger than {limit:,}", text)
        return value

    return bounded_int


def utc_time(text: str) -> str:
    """An ISO-8601 time pandas can place on the timeline (naive = UTC); kept as text."""
    import pandas as pd  # lazy: parsing the command line should not cost a pandas import

    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise argparse.ArgumentTypeError(f"must be an ISO-8601 time, got {text}")
    return text


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def existing_file(text: str) -> Path:
    """An input file that exists (checked at parse time, not deep inside a reader)."""
    path = Path(text)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise argparse.ArgumentTypeError(f"must be an existing file, {text} {what}")
    return path


def existing_dir(text: str) -> Path:
    """An input directory that exists."""
    path = Path(text)
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"must be an existing directory, {text} {what}")
    return path


def existing_path(text: str) -> Path:
    """An input that exists, file or directory (Parquet is either)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"must exist, {text} does not")
    return path


def json_file(text: str) -> Path:
    """An input file that exists and holds JSON (checked now, so a truncated or wrong file is
    named with its argument instead of failing deep inside the command)."""
    path = existing_file(text)
    try:
        json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"must be a JSON file, {text} is not ({exc.msg}, line {exc.lineno})"
        ) from None
    return path


def parquet_input(text: str) -> Path:
    """An existing Parquet file (its footer is read) or a directory of Parquet files."""
    path = existing_path(text)
    if path.is_file():
        import pyarrow.parquet as pq  # lazy: only commands that read Parquet pay for it

        try:
            pq.read_metadata(path)
        except (OSError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise argparse.ArgumentTypeError(
                f"must be a Parquet file, {text} is not ({first})"
            ) from None
    return path


def _nearest_existing(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _creatable_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (created as) a writable directory, or None if it can.

    Tried for real (a temporary directory made and removed in the nearest existing ancestor),
    because permission bits lie: root passes ``os.access`` on /proc, yet nothing can be made
    there.
    """
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a directory"
    ancestor = _nearest_existing(path)
    if not ancestor.is_dir():
        return f"{ancestor} is a file, so nothing can be created under it"
    try:
        Path(tempfile.mkdtemp(prefix=".vitalstream-probe-", dir=ancestor)).rmdir()
    except OSError as exc:
        return f"cannot create anything in {ancestor} ({exc.strerror})"
    return None


def writable_dir(text: str) -> Path:
    """An output directory that exists and is writable, or can be created."""
    path = Path(text)
    problem = _creatable_dir_problem(path)
    if problem:
        raise argparse.ArgumentTypeError(f"must be a writable directory: {problem}")
    return path


def writable_file(text: str) -> Path:
    """An output file whose directory exists and is writable, or can be created."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"must be a writable file: {text} is a directory")
    problem = _creatable_dir_problem(path.parent)
    if problem:
        raise argparse.ArgumentTypeError(f"must be a writable file: {problem}")
    return path


def checked(argument: str, build: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``build(*args, **kwargs)``; a bad value it rejects becomes a :class:`UsageError` naming
    ``argument`` (settings given as JSON are checked by their dataclass, after parsing)."""
    try:
        return build(*args, **kwargs)
    except (ValueError, TypeError, KeyError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"argument {argument}: {text}") from None


def require_keys(argument: str, mapping: dict[str, Any], required: Sequence[str]) -> None:
    """Refuse (``UsageError``) a JSON object without the keys a command reads from it."""
    missing = [key for key in required if key not in mapping]
    if missing:
        raise UsageError(f"argument {argument}: missing key(s) {', '.join(missing)}")


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def available_memory_bytes() -> int:
    """Memory the machine can give a new allocation: ``MemAvailable``, else physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 2**63 - 1  # unknown: do not refuse


def _bytes_text(n: float) -> str:
    if not math.isfinite(n):
        return "unboundedly many bytes"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover (the loop always returns)


def check_fits_in_memory(arguments: str, rows: float, bytes_per_row: float, what: str) -> None:
    """Refuse (``UsageError``) a size whose estimated peak exceeds the available memory.

    ``rows`` is a float on purpose: ``--hours 1e12`` must give a huge number, not overflow.
    """
    need = rows * bytes_per_row
    have = available_memory_bytes()
    if not need <= have * MEMORY_HEADROOM:
        raise UsageError(
            f"{arguments}: {what} = {rows:.3g} rows, about {_bytes_text(need)} at "
            f"{bytes_per_row:g} B/row, more than the {_bytes_text(have * MEMORY_HEADROOM)} "
            "this machine can spare; ask for fewer"
        )


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def json_argument(text: str) -> Any:
    """JSON text, or ``@PATH`` for a file holding it."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {shown!r}") from exc


def json_object(text: str) -> dict[str, Any]:
    """Like :func:`json_argument`, but the value must be a JSON object (settings mappings)."""
    value = json_argument(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {type(value).__name__}")
    return value
