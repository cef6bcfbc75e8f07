"""What the two producers of canonical tables share: the time origin and deterministic files.

What it is for: the synthetic cohort (:mod:`vitalstream.data.cohort`) and the PhysioNet
converters (:mod:`vitalstream.data.physionet`) both lay readings on a timeline that starts at an
ISO-8601 ``start`` and both write Parquet files whose bytes depend on the data alone; this module
is the one place those two things are defined, so a cohort and a real source written from the
same frames are byte-identical.

Not for: the schema itself (columns, dtypes, validation live in :mod:`vitalstream.core.schema`),
nor for reading files back (``pd.read_parquet`` restores the canonical dtypes on its own).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 262_144  # ~14 row groups per 1,000 patient-hours: parallel reads, small footer
ZSTD_LEVEL = 3


def start_ms(start: str) -> int:
    """Milliseconds since the epoch of the ISO-8601 time ``start``; a naive time is UTC.

    Raises ValueError when ``start`` is not a time pandas can parse.
    """
    ts = pd.Timestamp(start)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def write_parquet(df: pd.DataFrame, arrow_schema: pa.Schema, path: Path) -> None:
    """Write ``df`` with ``arrow_schema`` to ``path``; same frame → same bytes."""
    table = pa.Table.from_pandas(df, schema=arrow_schema, preserve_index=False)
    # The only schema metadata is pandas' dtype record (no clocks or paths, so the bytes are
    # deterministic); it lets a plain pd.read_parquet restore the canonical dtypes.
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=True,
        write_statistics=True,
    )


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
