"""RQ4's streaming model inside a real Spark Structured Streaming query reading a real Kafka
topic: the probabilities its foreachBatch computes equal the offline replay's bit for bit, over
several micro-batches (vitalstream.models.streamlearn)."""

from __future__ import annotations

import numpy as np
import pytest
from vitalstream.models import streamlearn
from vitalstream.services import broker

pytestmark = pytest.mark.integration

PARAMS = {"alpha": 1e-4, "random_state": 0}


def clock_case(stays: int = 60, seed: int = 5) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 25, stays)
    admission = np.arange(stays) // 3
    clock = np.concatenate([a + np.arange(n) for a, n in zip(admission, lengths, strict=True)])
    discharge = np.repeat(admission + lengths - 1, lengths)
    x = rng.normal(size=(len(clock), 5)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    y = (np.nan_to_num(x[:, 1]) + rng.normal(0, 0.7, len(clock)) > 1.0).astype(np.int8)
    return x, y, clock, discharge


def test_the_stream_computes_the_replay_bit_for_bit(kafka, spark, tmp_path):
    x, y, clock, discharge = clock_case()
    bootstrap = broker.cluster_bootstrap([kafka])
    count = streamlearn.publish(
        bootstrap, "rq4.stream.test", streamlearn.messages(x, y, clock, discharge)
    )
    streamed = streamlearn.run_stream(
        spark,
        bootstrap,
        "rq4.stream.test",
        len(y),
        PARAMS,
        tmp_path / "stream",
        seed=11,
        max_offsets_per_trigger=9,
        timeout_s=300,
    )
    replayed = streamlearn.replay(x, y, clock, discharge, PARAMS, seed=11)
    assert sum(b["messages"] for b in streamed.batches) == count
    assert len(streamed.batches) >= count // 9  # many micro-batches, not one
    np.testing.assert_array_equal(streamed.probability, replayed.probability)
    np.testing.assert_array_equal(streamed.scored_after, replayed.scored_after)
    np.testing.assert_array_equal(streamed.trained_in, replayed.trained_in)
    assert streamed.updates == len(np.unique(discharge))
    assert np.isfinite(streamed.probability).sum() > len(y) // 2
