"""Benchmark of the synthetic cohort generator: readings generated per second.

Prints one JSON line (median of ``--repeats`` runs, default 3) for a 1,000 patients × 1 h cohort
at 1 Hz (3.6 M readings) unless told otherwise. It measures generation into memory only; file
writing is timed separately (``write_seconds``, one run) because it is I/O bound. Not a test:
it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

try:
    from vitalstream.data.cohort import CohortParams, generate_cohort, write_cohort
except ModuleNotFoundError:  # run as a plain script without PYTHONPATH=scripts
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from vitalstream.data.cohort import CohortParams, generate_cohort, write_cohort


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    params = CohortParams(patients=args.patients, hours=args.hours, seed=args.seed)
    generate_cohort(CohortParams(patients=10, hours=0.05))  # warm imports and caches
    seconds = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        cohort = generate_cohort(params)
        seconds.append(time.perf_counter() - t0)
    readings = len(cohort.events)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_cohort(cohort, Path(tmp))
        write_seconds = time.perf_counter() - t0
    median_s = statistics.median(seconds)
    print(
        json.dumps(
            {
                "benchmark": "cohort_generation",
                "patients": args.patients,
                "hours": args.hours,
                "readings": readings,
                "repeats": args.repeats,
                "seconds": [round(s, 3) for s in seconds],
                "median_seconds": round(median_s, 3),
                "readings_per_s": round(readings / median_s),
                "write_seconds": round(write_seconds, 3),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
