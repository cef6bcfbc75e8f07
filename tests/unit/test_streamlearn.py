"""The streaming learner's protocol without Spark: the messages, walked in topic order, give
exactly the offline replay; every hour is scored before it is trained on; a micro-batch the
query re-delivers after a restart is not applied twice (vitalstream.models.streamlearn)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from vitalstream.models import streamlearn

PARAMS = {"alpha": 1e-4, "random_state": 0}


def clock_case(stays: int = 40, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Stays of 3–20 hours admitted two per clock hour; the label tracks the first feature."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 21, stays)
    admission = np.arange(stays) // 2
    clock = np.concatenate([a + np.arange(n) for a, n in zip(admission, lengths, strict=True)])
    discharge = np.repeat(admission + lengths - 1, lengths)
    x = rng.normal(size=(len(clock), 4)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    y = (np.nan_to_num(x[:, 0]) + rng.normal(0, 0.5, len(clock)) > 0.8).astype(np.int8)
    return x, y, clock, discharge


def walk(items: list[tuple[str, bytes]], n: int) -> streamlearn.StreamResult:
    walker = streamlearn.Walker(n, PARAMS, seed=3)
    for key, value in items:
        part = streamlearn.decode(value)
        if key.endswith(":score"):
            walker.score(part["row"], part["x"])
        else:
            walker.train(part["row"], part["x"], part["y"])
    return walker.result


def test_the_messages_walked_in_order_give_the_replay_bit_for_bit():
    x, y, clock, discharge = clock_case()
    replayed = streamlearn.replay(x, y, clock, discharge, PARAMS, seed=3)
    walked = walk(list(streamlearn.messages(x, y, clock, discharge)), len(y))
    np.testing.assert_array_equal(walked.probability, replayed.probability)
    np.testing.assert_array_equal(walked.scored_after, replayed.scored_after)
    np.testing.assert_array_equal(walked.trained_in, replayed.trained_in)
    assert walked.updates == replayed.updates == len(np.unique(discharge))


def test_each_hour_is_scored_before_it_is_trained_on():
    x, y, clock, discharge = clock_case(seed=1)
    keys = [key for key, _ in streamlearn.messages(x, y, clock, discharge)]
    hours = [int(k.split(":")[0]) for k in keys]
    assert hours == sorted(hours)
    for i, key in enumerate(keys):
        if key.endswith(":train") and i and keys[i - 1].split(":")[0] == key.split(":")[0]:
            assert keys[i - 1].endswith(":score")
    result = streamlearn.replay(x, y, clock, discharge, PARAMS)
    assert (result.scored_after < result.trained_in).all()


def test_a_message_round_trips_and_carries_no_pickle():
    rows = np.array([3, 1, 2])
    x = np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]], dtype=np.float32)
    part = streamlearn.decode(streamlearn.encode(rows, x, np.array([0, 1, 0])))
    np.testing.assert_array_equal(part["row"], rows)
    np.testing.assert_array_equal(part["x"], x)
    assert part["y"].tolist() == [0, 1, 0]
    assert "y" not in streamlearn.decode(streamlearn.encode(rows, x))


class ArrowBatch:
    """Stands in for a micro-batch's DataFrame: the applier only selects and converts to Arrow
    (the real query is tested in tests/integration/test_streamlearn_spark.py)."""

    def __init__(self, items: list[tuple[str, bytes]], first_offset: int) -> None:
        self.table = pa.table(
            {
                "key": [k.encode() for k, _ in items],
                "value": [v for _, v in items],
                "offset": list(range(first_offset, first_offset + len(items))),
            }
        )

    def select(self, *_columns: str) -> ArrowBatch:
        return self

    def toArrow(self) -> pa.Table:  # noqa: N802 (pyspark's name)
        return self.table


def test_a_redelivered_micro_batch_is_not_applied_twice(tmp_path):
    x, y, clock, discharge = clock_case(seed=2)
    items = list(streamlearn.messages(x, y, clock, discharge))
    half = len(items) // 2
    applier = streamlearn.BatchApplier(streamlearn.Walker(len(y), PARAMS, 3), tmp_path)
    applier(ArrowBatch(items[:half], 0), 0)
    # The driver dies after batch 0's state was saved; Spark re-delivers batch 0, then batch 1.
    restarted = streamlearn.BatchApplier(streamlearn.Walker(len(y), PARAMS, 3), tmp_path)
    restarted(ArrowBatch(items[:half], 0), 0)
    restarted(ArrowBatch(items[half:], half), 1)
    expected = walk(items, len(y))
    np.testing.assert_array_equal(restarted.walker.result.probability, expected.probability)
    assert [b["batch_id"] for b in restarted.walker.result.batches] == [0, 1]


def test_an_unknown_message_kind_is_an_error(tmp_path):
    applier = streamlearn.BatchApplier(streamlearn.Walker(3, PARAMS, 0), tmp_path)
    bad = [("5:predict", streamlearn.encode(np.array([0]), np.zeros((1, 2))))]
    with pytest.raises(ValueError, match="unknown message kind"):
        applier(ArrowBatch(bad, 0), 0)
