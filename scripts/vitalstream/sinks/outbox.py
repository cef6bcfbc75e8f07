"""The webhook outbox: every alert still owed to a receiver, on disk, until it is delivered.

One SQLite file (stdlib ``sqlite3``, WAL journal, ``synchronous=FULL``) holds a row per
(alert_id, receiver URL). The notifier (vitalstream.sinks.webhook) adds each alert it reads from
the alerts topic and only then commits the topic's offset, so an alert is always in the topic,
in the outbox, or both: a crash between the two re-reads the alert, and ``add`` (INSERT OR
IGNORE on the key) queues it once. Rows move ``pending`` → ``delivered`` (a 2xx) or ``rejected``
(a 4xx that a retry cannot fix); a failed attempt leaves the row pending with a later
``next_try_ns``, so a new process over the same file carries on where the last one stopped.

Delivered and rejected rows are kept: they are the record of what each receiver got and when
(the delivery latency is ``delivered_ns - first_seen_ns``).

Not for: reading the topic or POSTing (vitalstream.sinks.webhook).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PENDING = "pending"
DELIVERED = "delivered"
REJECTED = "rejected"
STATES = (PENDING, DELIVERED, REJECTED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    alert_id TEXT NOT NULL,
    receiver TEXT NOT NULL,
    payload TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_ns INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    delivered_ns INTEGER,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'rejected')),
    PRIMARY KEY (alert_id, receiver)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (receiver, state, next_try_ns);
"""


@dataclass(frozen=True)
class QueuedAlert:
    """One alert as read from the topic: its id, its JSON text and when it reached the topic."""

    alert_id: str
    payload: str
    first_seen_ns: int


@dataclass(frozen=True)
class OutboxRow:
    """One (alert, receiver) row of the outbox."""

    alert_id: str
    receiver: str
    payload: str
    first_seen_ns: int
    attempts: int
    next_try_ns: int
    last_status: int | None
    last_error: str | None
    delivered_ns: int | None
    state: str


_COLUMNS = (
    "alert_id, receiver, payload, first_seen_ns, attempts, next_try_ns, last_status, "
    "last_error, delivered_ns, state"
)


class Outbox:
    """The outbox file, shared by the notifier's consumer and delivery threads.

    One connection behind one lock: every statement is a few rows on an indexed table, so
    serialising them costs far less than a POST, and no thread ever holds the lock across one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, with explicit transactions where several rows
        # must land together (add).
        self._db: sqlite3.Connection | None = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed add survives a power cut, not only a crash, because the topic's
        # offset is committed right after it and the alert would not be read again.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError(f"outbox {self.path} is closed")
        return self._db

    def add(self, alerts: Iterable[QueuedAlert], receivers: Sequence[str]) -> int:
        """Queue every alert for every receiver in one transaction; an (alert, receiver) pair
        already in the outbox (a republished or re-read alert) is left as it is. Returns how
        many rows are new; on return they are on disk."""
        rows = [
            (a.alert_id, url, a.payload, a.first_seen_ns, a.first_seen_ns)
            for a in alerts
            for url in receivers
        ]
        if not rows:
            return 0
        with self._lock:
            db = self._conn()
            before = db.total_changes
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR IGNORE INTO outbox "
                    "(alert_id, receiver, payload, first_seen_ns, next_try_ns) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return db.total_changes - before

    def due(
        self, receiver: str, now_ns: int, limit: int, skip: Iterable[str] = ()
    ) -> list[OutboxRow]:
        """Up to ``limit`` pending rows of ``receiver`` whose next try is due, oldest alert
        first, leaving out the ids in ``skip`` (those already being sent)."""
        skipped = set(skip)
        with self._lock:
            cursor = self._conn().execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE receiver = ? AND state = 'pending' "
                "AND next_try_ns <= ? ORDER BY first_seen_ns, alert_id LIMIT ?",
                (receiver, now_ns, limit + len(skipped)),
            )
            rows = [OutboxRow(*r) for r in cursor.fetchall()]
        return [r for r in rows if r.alert_id not in skipped][:limit]

    def next_try_ns(self, receiver: str) -> int | None:
        """When the earliest pending row of ``receiver`` is due (None: nothing pending)."""
        with self._lock:
            (value,) = (
                self._conn()
                .execute(
                    "SELECT MIN(next_try_ns) FROM outbox WHERE receiver = ? AND state = 'pending'",
                    (receiver,),
                )
                .fetchone()
            )
        return value

    def delivered(self, alert_id: str, receiver: str, delivered_ns: int, status: int) -> None:
        """The receiver answered 2xx: the row is done."""
        self._update(
            "attempts = attempts + 1, state = 'delivered', delivered_ns = ?, last_status = ?, "
            "last_error = NULL",
            (delivered_ns, status),
            alert_id,
            receiver,
        )

    def retry(
        self, alert_id: str, receiver: str, next_try_ns: int, error: str, status: int | None
    ) -> None:
        """A failed attempt a later one may fix: the row stays pending until ``next_try_ns``."""
        self._update(
            "attempts = attempts + 1, next_try_ns = ?, last_error = ?, last_status = ?",
            (next_try_ns, error, status),
            alert_id,
            receiver,
        )

    def rejected(self, alert_id: str, receiver: str, error: str, status: int | None) -> None:
        """The receiver refused the alert for good (e.g. 400, 404): kept, never retried."""
        self._update(
            "attempts = attempts + 1, state = 'rejected', last_error = ?, last_status = ?",
            (error, status),
            alert_id,
            receiver,
        )

    def _update(self, assignments: str, values: tuple, alert_id: str, receiver: str) -> None:
        with self._lock:
            self._conn().execute(
                f"UPDATE outbox SET {assignments} WHERE alert_id = ? AND receiver = ?",
                (*values, alert_id, receiver),
            )

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per receiver and state: ``{url: {"pending": n, "delivered": n, ...}}``."""
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT receiver, state, COUNT(*) FROM outbox GROUP BY receiver, state")
                .fetchall()
            )
        counts: dict[str, dict[str, int]] = {}
        for receiver, state, n in rows:
            counts.setdefault(receiver, dict.fromkeys(STATES, 0))[state] = n
        return counts

    def row(self, alert_id: str, receiver: str) -> OutboxRow | None:
        """One row, as it is on disk (for status pages and tests)."""
        with self._lock:
            found = (
                self._conn()
                .execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE alert_id = ? AND receiver = ?",
                    (alert_id, receiver),
                )
                .fetchone()
            )
        return OutboxRow(*found) if found else None

    def rows(self, receiver: str | None = None) -> list[OutboxRow]:
        """Every row (of one receiver), oldest alert first."""
        where, args = ("WHERE receiver = ?", (receiver,)) if receiver else ("", ())
        with self._lock:
            found = (
                self._conn()
                .execute(
                    f"SELECT {_COLUMNS} FROM outbox {where} ORDER BY first_seen_ns, alert_id", args
                )
                .fetchall()
            )
        return [OutboxRow(*r) for r in found]

    @property
    def closed(self) -> bool:
        return self._db is None

    def close(self) -> None:
        """Close the file; later calls raise ``sqlite3.ProgrammingError``."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
