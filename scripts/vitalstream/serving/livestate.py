"""The live dashboard's in-memory model and the feeds that fill it.

``python -m vitalstream up`` keeps one :class:`LiveState`: the newest alerts (from the alerts
topic, through :class:`AlertFeed`), each patient's last window and last hour of NEWS2 and heart
rate (from the search index, through :class:`WindowFeed`) and the pipeline's health (set by the
lead process). The page server (vitalstream.serving.livepage) reads it as a snapshot and as
changes since a sequence number, so a page that already has the state asks only for what
changed; :meth:`LiveState.wait_for_change` lets it hold a request open until something does.

Every change bumps one sequence number and stamps what it changed with it. Alerts are kept by
``alert_id`` (a micro-batch replayed after a restart republishes the same ids: they change
nothing), newest event time first, the last :data:`MAX_ALERTS`. The state is bounded whatever
runs for how long: alerts by count, series by an hour of event time and a point cap.

Not for: the page itself (vitalstream.serving.livepage), the job's sinks (vitalstream.sinks).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vitalstream.core.settings import index_name
from vitalstream.sinks import search

LOG = logging.getLogger(__name__)

MAX_ALERTS = 500
# Ids remembered beyond the kept alerts, so a replay of an alert already trimmed stays a repeat.
SEEN_IDS = 20_000
SERIES_S = 3600.0
# A tile's sparkline: the hour before its last window in SERIES_POINTS buckets (one a minute),
# each point one character of SPARK_ALPHABET (its level between the scale's bounds).
SERIES_POINTS = 60
SPARK_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
LEVELS = len(SPARK_ALPHABET)
NO_POINT = "."
SPARK_SCALES = {"news2": (0.0, 20.0), "hr": (30.0, 220.0)}
# The last window's values a tile shows (the window means of these vitals).
TILE_VITALS = ("hr", "spo2", "sbp", "rr", "temp", "map")


def epoch_ms(value: Any) -> int | None:
    """A time as epoch milliseconds: ISO text (the topic's and the index's), a number of
    milliseconds (the index's sort values) or a datetime; None when there is none."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"time {value!r}: expected ISO text, epoch milliseconds or a datetime")
    if isinstance(value, int | float):
        return None if math.isnan(value) else int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    text = str(value).strip()
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python < 3.11 would refuse nanoseconds; trim the fraction to microseconds.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[: min(digits, 6)] + rest[digits:]
        text = f"{head}.{rest}"
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:  # the sinks write UTC; a bare stamp is UTC too
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def _event_ms(value: Any) -> int | None:
    """A time of a message from elsewhere: one that does not parse is no time, not a crash of
    the feed (which would read the same message again forever)."""
    try:
        return epoch_ms(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _number(value: Any) -> float | None:
    """A finite float or None (JSON has no NaN)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _rounded(value: Any, digits: int = 1) -> float | int | None:
    """Compact numbers for the page: one decimal, integers without one."""
    number = _number(value)
    if number is None:
        return None
    number = round(number, digits)
    return int(number) if number == int(number) else number


@dataclass
class _Alert:
    seq: int
    time_ms: int
    payload: dict[str, Any]


@dataclass
class _Tile:
    """One patient: the last window's values and the series of the last hour (by start)."""

    seq: int = 0
    last_start_ms: int = -1
    last: dict[str, Any] = field(default_factory=dict)
    # window_start ms -> (news2, hr_mean), kept sorted by start when read
    points: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)


class LiveState:
    """Thread-safe: the feeds write, the page server's threads read and wait."""

    def __init__(self, max_alerts: int = MAX_ALERTS, series_s: float = SERIES_S) -> None:
        self.max_alerts = max_alerts
        self.series_ms = int(series_s * 1000)
        self._changed = threading.Condition()
        self._seq = 0
        self._alerts: dict[str, _Alert] = {}
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._tiles: dict[str, _Tile] = {}
        self._clock_ms = 0  # the newest window start seen: the series' event-time clock
        self._health: dict[str, Any] = {}
        self._health_seq = 0
        self.alerts_received = 0
        self.windows_received = 0

    # ------------------------------------------------------------------ writes

    @property
    def seq(self) -> int:
        with self._changed:
            return self._seq

    def add_alerts(self, alerts: Iterable[Mapping[str, Any]]) -> int:
        """Add the new ones (by ``alert_id``); returns how many were new."""
        with self._changed:
            added = 0
            for alert in alerts:
                added += self._add_alert(alert)
            if added:
                self._trim_alerts()
                self._changed.notify_all()
            return added

    def _add_alert(self, alert: Mapping[str, Any]) -> int:
        self.alerts_received += 1
        alert_id = str(alert.get("alert_id", ""))
        if not alert_id or alert_id in self._seen:
            return 0
        self._remember(alert_id)
        time_ms = _event_ms(alert.get("time")) or 0
        if len(self._alerts) >= self.max_alerts and time_ms < self._oldest_alert_ms():
            return 0  # older than everything kept: it would be trimmed at once
        self._seq += 1
        payload = {k: v for k, v in alert.items() if v is not None}
        payload["alert_id"] = alert_id
        for key in ("value", "threshold"):
            if key in payload:
                payload[key] = _number(payload[key])
        self._alerts[alert_id] = _Alert(self._seq, time_ms, payload)
        return 1

    def _remember(self, alert_id: str) -> None:
        self._seen.add(alert_id)
        self._seen_order.append(alert_id)
        while len(self._seen_order) > max(SEEN_IDS, self.max_alerts):
            self._seen.discard(self._seen_order.popleft())

    def _oldest_alert_ms(self) -> int:
        return min(a.time_ms for a in self._alerts.values())

    def _trim_alerts(self) -> None:
        if len(self._alerts) <= self.max_alerts:
            return
        newest = sorted(self._alerts.values(), key=_alert_order)[: self.max_alerts]
        self._alerts = {a.payload["alert_id"]: a for a in newest}

    def add_windows(self, windows: Iterable[Mapping[str, Any]]) -> int:
        """Add windows (the index's documents or the job's rows); a window seen before (same
        patient and start) changes nothing. Returns how many were new."""
        with self._changed:
            added = 0
            touched: set[str] = set()
            for window in windows:
                if self._add_window(window):
                    added += 1
                    touched.add(str(window["patient_id"]))
            if added:
                self._seq += 1
                for patient in touched:
                    self._trim_series(self._tiles[patient])
                    self._tiles[patient].seq = self._seq
                self._changed.notify_all()
            return added

    def _add_window(self, window: Mapping[str, Any]) -> bool:
        self.windows_received += 1
        patient = window.get("patient_id")
        start_ms = _event_ms(window.get("window_start"))
        if patient is None or start_ms is None:
            return False
        tile = self._tiles.setdefault(str(patient), _Tile())
        point = (_number(window.get("news2_total")), _number(window.get("hr_mean")))
        if tile.points.get(start_ms) == point:
            return False
        tile.points[start_ms] = point
        if start_ms >= tile.last_start_ms:
            tile.last_start_ms = start_ms
            tile.last = _last_values(window, start_ms)
        self._clock_ms = max(self._clock_ms, start_ms)
        return True

    def _trim_series(self, tile: _Tile) -> None:
        cutoff = self._clock_ms - self.series_ms
        if any(start < cutoff for start in tile.points):
            tile.points = {s: p for s, p in tile.points.items() if s >= cutoff}

    def set_health(self, health: Mapping[str, Any]) -> None:
        """The pipeline's health as the lead process measures it (rendered as given)."""
        with self._changed:
            self._seq += 1
            self._health = json.loads(json.dumps(dict(health), default=str))
            self._health_seq = self._seq
            self._changed.notify_all()

    # ------------------------------------------------------------------ reads

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows: alerts newest first, tiles worst NEWS2 first, health."""
        return self.changes(0)

    def changes(self, since: int) -> dict[str, Any]:
        """What changed after ``since``; everything (``reset``) when ``since`` is 0 or is not
        this state's (a page that outlived a restart of the server)."""
        with self._changed:
            reset = since <= 0 or since > self._seq
            after = 0 if reset else since
            alerts = [a for a in self._alerts.values() if a.seq > after]
            alerts.sort(key=_alert_order)
            tiles = [(p, t) for p, t in self._tiles.items() if t.seq > after]
            cutoff = self._clock_ms - self.series_ms
            rows = [_tile_row(p, t, cutoff, self.series_ms) for p, t in tiles]
            rows.sort(key=lambda r: (-(r["news2"] if r["news2"] is not None else -1), r["p"]))
            return {
                "seq": self._seq,
                "reset": reset,
                "alerts": [dict(a.payload, seq=a.seq) for a in alerts],
                "tiles": rows,
                "health": self._health if self._health_seq > after else None,
                "patients": len(self._tiles),
                "clock_ms": self._clock_ms,
                "spark": self.spark_legend(),
            }

    def spark_legend(self) -> dict[str, Any]:
        """How the page decodes a tile's sparkline strings."""
        return {
            "alphabet": SPARK_ALPHABET,
            "none": NO_POINT,
            "points": SERIES_POINTS,
            "span_s": self.series_ms / 1000,
            "scales": {k: list(v) for k, v in SPARK_SCALES.items()},
        }

    def wait_for_change(self, since: int, timeout_s: float) -> int:
        """Block until the sequence number passes ``since`` or the timeout; returns it."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq != since, timeout=timeout_s)
            return self._seq

    def wake(self) -> None:
        """Release every waiting reader (the server is stopping)."""
        with self._changed:
            self._changed.notify_all()


def _alert_order(alert: _Alert) -> tuple[int, int]:
    """Newest event time first; among equal times the later arrival first."""
    return (-alert.time_ms, -alert.seq)


def _last_values(window: Mapping[str, Any], start_ms: int) -> dict[str, Any]:
    values = {v: _rounded(window.get(f"{v}_mean")) for v in TILE_VITALS}
    return {
        "start": start_ms,
        "end": _event_ms(window.get("window_end")),
        "news2": _number(window.get("news2_total")),
        "vitals": {k: v for k, v in values.items() if v is not None},
    }


def spark_code(value: float | None, low: float, high: float) -> str:
    """One sparkline point as one character: its level of 64 between ``low`` and ``high``
    (clamped), or :data:`NO_POINT`. A 34-pixel sparkline shows no finer step, and 1,000
    patients' hours stay a few hundred kilobytes."""
    if value is None:
        return NO_POINT
    level = round((LEVELS - 1) * (min(max(value, low), high) - low) / (high - low))
    return SPARK_ALPHABET[level]


def _tile_row(patient: str, tile: _Tile, cutoff_ms: int, series_ms: int) -> dict[str, Any]:
    """A tile, compactly: the last window's values and, for the hour before its last window,
    NEWS2 and heart rate in SERIES_POINTS buckets as strings of :func:`spark_code`
    characters (bucket SERIES_POINTS - 1 is the last window; the latest window of a bucket
    stands for it)."""
    bucket_ms = max(1, series_ms // SERIES_POINTS)
    news2_codes = [NO_POINT] * SERIES_POINTS
    hr_codes = [NO_POINT] * SERIES_POINTS
    for start in sorted(s for s in tile.points if s >= cutoff_ms):
        back = (tile.last_start_ms - start) // bucket_ms
        if 0 <= back < SERIES_POINTS:
            news2, hr = tile.points[start]
            news2_codes[SERIES_POINTS - 1 - back] = spark_code(news2, *SPARK_SCALES["news2"])
            hr_codes[SERIES_POINTS - 1 - back] = spark_code(hr, *SPARK_SCALES["hr"])
    news2 = tile.last.get("news2")
    return {
        "p": patient,
        "news2": int(news2) if news2 is not None else None,
        "end": tile.last.get("end"),
        "v": tile.last.get("vitals", {}),
        "s": {"news2": "".join(news2_codes), "hr": "".join(hr_codes)},
    }


# ---------------------------------------------------------------------- feeds


class _Feed:
    """A daemon thread with start/stop that never dies of an error: it counts them."""

    name = "feed"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error = ""

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._guarded, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _guarded(self) -> None:
        while not self._stop.is_set():
            try:
                self._run()
            except Exception as err:  # the dashboard outlives any error of its sources
                self._failed(err)
                self._stop.wait(1.0)

    def _failed(self, err: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(err).__name__}: {err}"
        LOG.warning("%s: %s", self.name, self.last_error)

    def _run(self) -> None:
        raise NotImplementedError


class AlertFeed(_Feed):
    """The alerts topic into the state, as alerts arrive.

    No consumer group state: a dashboard is a viewer, not a processor, so each start reads
    from the offsets of one hour ago (``offsets_for_times``; the beginning where the broker
    has no answer) and commits nothing. A topic that does not exist yet is waited for."""

    name = "live-alert-feed"

    def __init__(
        self,
        bootstrap_servers: str,
        alerts_topic: str,
        state: LiveState,
        backfill_s: float = SERIES_S,
    ) -> None:
        super().__init__()
        self.bootstrap_servers = bootstrap_servers
        self.topic = alerts_topic
        self.state = state
        self.backfill_s = backfill_s
        self.received = 0
        self.bad_messages = 0

    def _run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": f"vitalstream-live-page-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 50,
                "log_level": 3,
            }
        )
        try:
            partitions = self._partitions(consumer)
            if partitions:
                consumer.assign(partitions)
                self._consume(consumer)
        finally:
            consumer.close()

    def _partitions(self, consumer: Any) -> list[Any]:
        """The topic's partitions at the offsets of ``backfill_s`` ago (waits for the topic)."""
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

        while not self._stop.is_set():
            try:
                meta = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
            except KafkaException as err:
                self._failed(err)
                meta = None
            if meta is not None and meta.error is None and meta.partitions:
                since_ms = int((time.time() - self.backfill_s) * 1000)
                wanted = [TopicPartition(self.topic, p, since_ms) for p in meta.partitions]
                try:
                    found = consumer.offsets_for_times(wanted, timeout=10)
                except KafkaException as err:
                    self._failed(err)
                    found = [TopicPartition(self.topic, tp.partition) for tp in wanted]
                    for tp in found:
                        tp.offset = OFFSET_BEGINNING
                for tp in found:  # -1: nothing after that time; an error: read it all
                    if tp.error is not None:
                        tp.offset = OFFSET_BEGINNING
                    elif tp.offset < 0:
                        tp.offset = OFFSET_END
                return found
            self._stop.wait(1.0)
        return []

    def _consume(self, consumer: Any) -> None:
        while not self._stop.is_set():
            messages = consumer.consume(num_messages=500, timeout=0.2)
            alerts = []
            for message in messages:
                if message.error() is not None:
                    self._failed(RuntimeError(str(message.error())))
                    continue
                try:
                    alerts.append(json.loads(message.value()))
                except (TypeError, ValueError):
                    self.bad_messages += 1
            if alerts:
                self.received += len(alerts)
                self.state.add_alerts(alerts)


class WindowFeed(_Feed):
    """The windows index into the state, polled incrementally by ``indexed_at``.

    Hits are sorted by (``indexed_at``, patient, window start), and each poll continues with
    ``search_after`` from the last one read, so a poll reads only what was indexed since. The
    job's indexer is one writer whose bulk requests wait for their refresh, so a document never
    becomes searchable after one stamped later; should one (a second writer, a clock step),
    every ``RESCAN_EVERY``-th poll reads again from ``RESCAN_MS`` before the cursor, and the
    state drops the windows it already has. The first poll reaches back ``backfill_s``. A
    missing index is an empty answer (``ignore_unavailable``); a server that is away or a
    shard not ready yet is counted and retried."""

    name = "live-window-feed"
    PAGE = 2000
    RESCAN_EVERY = 30
    RESCAN_MS = 5000

    def __init__(
        self,
        search_url: str,
        index_prefix: str,
        run: str,
        state: LiveState,
        poll_s: float = 1.0,
        backfill_s: float = SERIES_S,
    ) -> None:
        super().__init__()
        self.url = search_url.rstrip("/")
        self.index = index_name(index_prefix, search.WINDOWS)
        self.run = run
        self.state = state
        self.poll_s = poll_s
        self.backfill_s = backfill_s
        self.cursor: list[Any] | None = None  # the sort values of the last hit read
        self.polls = 0
        self.received = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except search.SearchError as err:  # away for a while, or not started yet
                self._failed(err)
            self._stop.wait(self.poll_s)

    def poll_once(self) -> int:
        """One incremental read; returns how many documents it read."""
        self.polls += 1
        since_ms = int((time.time() - self.backfill_s) * 1000)
        after = self.cursor
        if after is not None and self.polls % self.RESCAN_EVERY == 0:
            with contextlib.suppress(TypeError, ValueError):
                since_ms = max(since_ms, int(after[0]) - self.RESCAN_MS)
                after = None
        read = 0
        while True:
            hits = self._page(since_ms, after)
            if not hits:
                break
            self.state.add_windows(hit["_source"] for hit in hits)
            read += len(hits)
            after = hits[-1]["sort"]
            if self.cursor is None or _later(after, self.cursor):
                self.cursor = after
            if len(hits) < self.PAGE or self._stop.is_set():
                break
        self.received += read
        return read

    def _page(self, since_ms: int, after: list[Any] | None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "size": self.PAGE,
            "track_total_hits": False,
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"run": self.run}},
                        {"range": {"indexed_at": {"gte": since_ms, "format": "epoch_millis"}}},
                    ]
                }
            },
            "sort": [{"indexed_at": "asc"}, {"patient_id": "asc"}, {"window_start": "asc"}],
        }
        if after is not None:
            body["search_after"] = after
        target = f"{self.url}/{self.index}/_search?ignore_unavailable=true"
        answer = search.request(target, "POST", body, timeout=30)
        return list(answer.get("hits", {}).get("hits", []))


def _later(key: list[Any], than: list[Any]) -> bool:
    """Sort values compared as the index sorts them (ties never: the key is unique)."""
    try:
        return tuple(key) > tuple(than)
    except TypeError:  # a server that returns other types: keep the newest it gave
        return True
