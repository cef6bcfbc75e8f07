"""The job's search-index sink: a micro-batch's alerts and windows are in the index before the
batch completes.

Indexing used to run in a background thread after the batch had committed: a driver crash
lost what was still queued, and a round that failed after its retries was only logged, so
the index could silently miss alerts that every other sink had. Now the foreachBatch call
indexes synchronously: alerts with ``refresh=wait_for`` (the call returns once they are
searchable, so ``visible_wall_ns`` still means visible), windows with ``refresh=false``. A
server that does not answer, or answers 429/5xx for some documents, is retried with back-off
for a bounded time; then :class:`IndexingError` fails the batch and Spark, restarted from its
checkpoint, runs it again. Ids are deterministic and written with ``create``, so the replay
adds nothing and its collisions are counted as ``duplicates``.

A document the server refuses for itself (a 4xx per item, e.g. a value its mapping rejects)
would be refused again on every replay: it is dead-lettered instead, with the server's reason,
in ``search_errors.jsonl`` and counted in the batch's record of ``search_commits.jsonl``
(``{query, batch_id, alerts, windows, duplicates, errors, visible_wall_ns}`` and the alerts'
share of duplicates and errors, ``alert_duplicates``, ``alert_errors``; read by
vitalstream.sinks.search.read_search_commits; ``visible_wall_ns`` is absent for a batch with
a refused alert).

Not for: templates, read-back and comparison (vitalstream.sinks.search).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from vitalstream.core.settings import SearchSink
from vitalstream.sinks.search import (
    ALERTS,
    WINDOWS,
    BulkResult,
    SearchError,
    bulk_index,
    document_ids,
)

# How long a batch keeps retrying an unreachable or overloaded server before it fails.
RETRY_S = 120.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 8.0


class IndexingError(SearchError):
    """The index did not take a batch's documents within the retry time: the batch fails."""


class Indexer:
    """Indexes each micro-batch inside its foreachBatch call (see the module docstring)."""

    def __init__(self, sink: SearchSink, out_dir: Path, retry_s: float = RETRY_S) -> None:
        self.sink = sink
        self.retry_s = retry_s
        out_dir.mkdir(parents=True, exist_ok=True)
        self.commits = out_dir / "search_commits.jsonl"
        self.errors = out_dir / "search_errors.jsonl"

    def index_batch(
        self, query: str, batch_id: int, alerts: pd.DataFrame, windows: pd.DataFrame
    ) -> dict[str, Any]:
        """Index one batch's alerts (visible on return), then its windows; record and return
        the batch's counts. Raises :class:`IndexingError` when the server stays away."""
        extra = {"query": query, "batch_id": batch_id}
        alert_result = self._bulk_until_done(ALERTS, alerts, "wait_for", extra)
        visible_ns = time.time_ns()
        window_result = self._bulk_until_done(WINDOWS, windows, "false", extra)
        record: dict[str, Any] = {**extra, "duplicates": 0}
        refused: list[dict[str, Any]] = []
        for kind, frame, result in (
            (ALERTS, alerts, alert_result),
            (WINDOWS, windows, window_result),
        ):
            counts = self._counts(kind, frame, result)
            record[kind] = counts["indexed"]
            record["duplicates"] += counts["duplicates"]
            refused.extend({**e, "kind": kind, **extra} for e in counts["refused"])
            if kind == ALERTS:  # none when some alert of the batch did not make it
                record["visible_wall_ns"] = None if counts["refused"] else visible_ns
                # The alerts' own share (a fault audit checks alerts, not windows).
                record["alert_duplicates"] = counts["duplicates"]
                record["alert_errors"] = len(counts["refused"])
        record["errors"] = len(refused)
        if refused:
            with self.errors.open("a") as fh:
                fh.writelines(json.dumps(e, default=str) + "\n" for e in refused)
        with self.commits.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        return record

    def close(self) -> None:
        """Nothing is queued: every batch was indexed before it completed."""

    def _bulk_until_done(
        self, kind: str, frame: pd.DataFrame, refresh: str, extra: dict[str, Any]
    ) -> BulkResult:
        """Bulk-index ``frame``, sending again what the server could not take (unreachable,
        429, 5xx) with back-off until it has everything or ``retry_s`` has passed."""
        total = BulkResult()
        remaining = frame
        deadline = time.monotonic() + self.retry_s
        delay = FIRST_DELAY_S
        while True:
            try:
                result = bulk_index(
                    self.sink.url, self.sink.index(kind), remaining, kind, self.sink.run,
                    refresh=refresh, extra=extra,
                )  # fmt: skip
            except SearchError as err:
                last: Any = err
            else:
                _merge(total, result)
                if not result.transient:
                    return total
                left = {e["id"] for e in result.transient}
                ids = document_ids(remaining, kind, self.sink.run)
                remaining = remaining.loc[[i in left for i in ids]]
                last = result.transient[0]["error"]
            if time.monotonic() + delay > deadline:
                raise IndexingError(
                    f"{self.sink.index(kind)}: {len(remaining)} {kind} of batch "
                    f"{extra['query']}/{extra['batch_id']} not indexed within "
                    f"{self.retry_s:.0f} s: {str(last)[:500]}"
                )
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)

    def _counts(self, kind: str, frame: pd.DataFrame, result: BulkResult) -> dict[str, Any]:
        """The batch's rows by outcome: a created id counts once (for its first row), a
        refused one for every row that carries it, and any other row was a duplicate of a
        document already there (an earlier attempt of this batch, or an earlier row)."""
        ids = document_ids(frame, kind, self.sink.run) if len(frame) else []
        errors = {e["id"]: e for e in result.errors}
        counts: dict[str, Any] = {"indexed": 0, "duplicates": 0, "refused": []}
        claimed: set[str] = set()
        for doc_id in ids:
            if doc_id in errors:
                counts["refused"].append(errors[doc_id])
            elif doc_id in result.created_ids and doc_id not in claimed:
                claimed.add(doc_id)
                counts["indexed"] += 1
            else:
                counts["duplicates"] += 1
        return counts


def _merge(total: BulkResult, part: BulkResult) -> None:
    """Add one attempt's outcome to the batch's (transient failures are not kept: they are
    sent again or fail the batch)."""
    total.indexed += part.indexed
    total.duplicates += part.duplicates
    total.errors.extend(part.errors)
    total.created_ids |= part.created_ids
