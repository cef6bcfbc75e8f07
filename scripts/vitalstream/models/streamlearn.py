"""RQ4's streaming model: logistic regression updated inside a Spark Structured Streaming query.

The learner
    ``PrequentialSGD``: scikit-learn's ``SGDClassifier.partial_fit`` (log loss), one update per
    hour batch of discharged stays, on features standardised with the running statistics of the
    training rows seen so far (missing → the running mean, clipped at ±``CLIP_SD`` standard
    deviations so that one outlier cannot throw the weights). Each update sees its rows in a
    seeded random order: one stay's hours in a row would pull SGD one way.

The stream
    ``publish`` writes the RQ4 clock (models.rq4) to a one-partition Kafka topic in clock
    order: for every clock hour h, a *score* message with the rows charted at h, then a *train*
    message with the rows of the stays discharged at h (their labels are complete only then).
    ``run_stream`` reads the topic with a Structured Streaming query whose ``foreachBatch``
    walks its messages in offset order: a score message is scored by the model as it stands,
    a train message updates it (test, then train: prequential). Every row is therefore scored
    before any model has seen its label, and the result does not depend on how Spark cuts the
    topic into micro-batches.

Why a replay as well
    ``replay`` walks the same hour batches in one process without Kafka or Spark. The stream
    must reproduce it bit for bit (same learner, same calls, same order): rq4 records the
    largest difference, and a test with a real broker and real Spark checks it is zero. So the
    model the paper reports is the one the stream computed, and a reader can re-run it offline.

Restarts
    The learner's state is pickled into the query's checkpoint directory after every micro-batch
    together with the batch id; a restarted query skips micro-batches it has already applied
    (``foreachBatch`` is at-least-once), so a crash does not train twice on a batch.

Not for: the window risk model the diagnostic job applies (vitalstream.models.riskmodel).
"""

from __future__ import annotations

import io
import pickle
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CLIP_SD = 5.0
SCORE, TRAIN = "score", "train"
STATE_FILE = "learner.pkl"
# A train message holds one hour's discharges (a few hundred rows on set A); the topic and the
# producer accept far larger ones so that a denser clock fails nowhere silently.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass
class StreamResult:
    """Prequential output: a probability per row (NaN before the first update), the number of
    updates the scoring model had had, and the update that first trained on the row (0: never)."""

    probability: np.ndarray
    scored_after: np.ndarray
    trained_in: np.ndarray
    updates: int = 0
    batches: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def empty(cls, n: int) -> StreamResult:
        return cls(np.full(n, np.nan), np.full(n, -1, np.int64), np.zeros(n, np.int64))


class PrequentialSGD:
    """The streaming learner (module docstring): ``score`` before ``train``, hour by hour."""

    def __init__(self, params: Mapping[str, Any], seed: int = 0) -> None:
        from sklearn.linear_model import SGDClassifier
        from sklearn.preprocessing import StandardScaler

        self.model = SGDClassifier(**{"loss": "log_loss", **params})
        self.scaler = StandardScaler()
        self.rng = np.random.default_rng(seed)
        self.updates = 0

    def _standardised(self, x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            z = self.scaler.transform(x.astype(np.float64))
        return np.clip(np.nan_to_num(z, nan=0.0), -CLIP_SD, CLIP_SD)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for ``x`` (NaN while the model has not been trained)."""
        if not self.updates or not len(x):
            return np.full(len(x), np.nan)
        return self.model.predict_proba(self._standardised(x))[:, 1]

    def train(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One update on the rows ``x`` (labels ``y``); returns the order it saw them in."""
        order = self.rng.permutation(len(x))
        x, y = x[order], y[order]
        with warnings.catch_warnings():  # a feature not yet charted in any stay: NaN stats
            warnings.simplefilter("ignore", RuntimeWarning)
            self.scaler.partial_fit(x.astype(np.float64))
        self.model.partial_fit(self._standardised(x), y, classes=[0, 1])
        self.updates += 1
        return order


def hour_batches(
    clock_h: np.ndarray, discharge_h: np.ndarray
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(hour, rows charted at it, rows of stays discharged at it)`` in clock order."""
    by_clock = np.argsort(clock_h, kind="stable")
    by_release = np.argsort(discharge_h, kind="stable")
    hours = np.unique(np.r_[clock_h, discharge_h])
    score_at = np.searchsorted(clock_h[by_clock], hours, side="left")
    score_end = np.searchsorted(clock_h[by_clock], hours, side="right")
    train_at = np.searchsorted(discharge_h[by_release], hours, side="left")
    train_end = np.searchsorted(discharge_h[by_release], hours, side="right")
    for i, hour in enumerate(hours):
        yield (
            int(hour),
            by_clock[score_at[i] : score_end[i]],
            by_release[train_at[i] : train_end[i]],
        )


class Walker:
    """Applies score and train steps to a ``StreamResult``; shared by the replay and the stream
    so that both make the same calls in the same order."""

    def __init__(self, n: int, params: Mapping[str, Any], seed: int) -> None:
        self.learner = PrequentialSGD(params, seed)
        self.result = StreamResult.empty(n)

    def score(self, rows: np.ndarray, x: np.ndarray) -> None:
        if len(rows):
            self.result.scored_after[rows] = self.learner.updates
            self.result.probability[rows] = self.learner.score(x)

    def train(self, rows: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        if len(rows):
            self.learner.train(x, y)
            self.result.trained_in[rows] = self.learner.updates
            self.result.updates = self.learner.updates


def replay(
    features: np.ndarray,
    labels: np.ndarray,
    clock_h: np.ndarray,
    discharge_h: np.ndarray,
    params: Mapping[str, Any],
    progress: Callable[[str], None] | None = None,
    seed: int = 0,
) -> StreamResult:
    """The stream's computation in one process (module docstring)."""
    walker = Walker(len(labels), params, seed)
    batches = list(hour_batches(clock_h, discharge_h))
    for i, (_hour, score_rows, train_rows) in enumerate(batches):
        walker.score(score_rows, features[score_rows])
        walker.train(train_rows, features[train_rows], labels[train_rows])
        if progress is not None and (i + 1) % max(1, len(batches) // 10) == 0:
            progress(f"replay: hour batch {i + 1}/{len(batches)}, {walker.learner.updates} updates")
    return walker.result


# --------------------------------------------------------------------------- messages


def encode(rows: np.ndarray, x: np.ndarray, y: np.ndarray | None = None) -> bytes:
    """One message's value: row ids, features (float32) and, for training, labels (npz)."""
    buffer = io.BytesIO()
    arrays = {"row": rows.astype(np.int64), "x": x.astype(np.float32)}
    if y is not None:
        arrays["y"] = y.astype(np.int8)
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def decode(value: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(value), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def messages(
    features: np.ndarray, labels: np.ndarray, clock_h: np.ndarray, discharge_h: np.ndarray
) -> Iterator[tuple[str, bytes]]:
    """``(key, value)`` of every message in topic order: ``"<hour>:score"``, ``"<hour>:train"``."""
    x = features.astype(np.float32)
    for hour, score_rows, train_rows in hour_batches(clock_h, discharge_h):
        if len(score_rows):
            yield f"{hour}:{SCORE}", encode(score_rows, x[score_rows])
        if len(train_rows):
            yield f"{hour}:{TRAIN}", encode(train_rows, x[train_rows], labels[train_rows])


def publish(bootstrap: str, topic: str, items: Iterator[tuple[str, bytes]]) -> int:
    """Write the messages to a new one-partition topic (order is the clock); returns the count."""
    from confluent_kafka import Producer

    from vitalstream.services import broker

    broker.create_topic(
        bootstrap, topic, 1, 1, config={"max.message.bytes": str(MAX_MESSAGE_BYTES)}
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "message.max.bytes": MAX_MESSAGE_BYTES,
        }
    )
    errors: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            errors.append(str(error))

    count = 0
    for key, value in items:
        while True:
            try:
                producer.produce(topic, value=value, key=key.encode(), on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.1)
        count += 1
        producer.poll(0)
    if producer.flush(60.0):
        raise RuntimeError(f"{topic}: messages still undelivered after 60 s")
    if errors:
        raise RuntimeError(f"{topic}: {len(errors)} messages not delivered, first: {errors[0]}")
    return count


# --------------------------------------------------------------------------- the query


class BatchApplier:
    """The ``foreachBatch`` function: walks a micro-batch's messages in offset order and keeps
    the learner's state in the checkpoint directory (module docstring, Restarts)."""

    def __init__(self, walker: Walker, state_dir: Path) -> None:
        self.walker = walker
        self.state_file = state_dir / STATE_FILE
        self.applied = -1
        if self.state_file.exists():
            self.applied, self.walker = pickle.loads(self.state_file.read_bytes())

    def __call__(self, batch: Any, batch_id: int) -> None:
        if batch_id <= self.applied:
            return
        started = time.monotonic()
        table = batch.select("key", "value", "offset").toArrow().sort_by("offset")
        keys = table.column("key").to_pylist()
        values = table.column("value").to_pylist()
        for key, value in zip(keys, values, strict=True):
            kind = key.decode().split(":", 1)[1]
            part = decode(value)
            if kind == SCORE:
                self.walker.score(part["row"], part["x"])
            elif kind == TRAIN:
                self.walker.train(part["row"], part["x"], part["y"])
            else:
                raise ValueError(f"unknown message kind {kind!r} (key {key!r})")
        self.walker.result.batches.append(
            {
                "batch_id": int(batch_id),
                "messages": len(keys),
                "first_offset": int(table.column("offset")[0].as_py()) if len(keys) else None,
                "seconds": round(time.monotonic() - started, 3),
                "updates": self.walker.learner.updates,
            }
        )
        self.applied = batch_id
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps((self.applied, self.walker)))
        tmp.replace(self.state_file)


def run_stream(
    spark: Any,
    bootstrap: str,
    topic: str,
    n_rows: int,
    params: Mapping[str, Any],
    checkpoint_dir: Path,
    *,
    seed: int = 0,
    max_offsets_per_trigger: int = 200,
    timeout_s: float = 1800.0,
) -> StreamResult:
    """Run the query over everything in ``topic`` (``availableNow``) and return the result."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    applier = BatchApplier(Walker(n_rows, params, seed), checkpoint_dir)
    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", int(max_offsets_per_trigger))
        .option("kafka.max.partition.fetch.bytes", str(MAX_MESSAGE_BYTES))
        .load()
        .writeStream.queryName("rq4_stream_sgd")
        .foreachBatch(applier)
        .option("checkpointLocation", str(checkpoint_dir / "query"))
        .trigger(availableNow=True)
        .start()
    )
    try:
        if not query.awaitTermination(timeout_s):
            raise RuntimeError(f"the RQ4 stream did not finish within {timeout_s:.0f} s")
    finally:
        query.stop()
    exception = query.exception()
    if exception is not None:
        raise RuntimeError(f"the RQ4 stream failed: {exception}")
    return applier.walker.result
