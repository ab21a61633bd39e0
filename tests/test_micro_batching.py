"""The gateway's micro-batcher and cost target, on their own."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from ragrouter.serving.batcher import MicroBatcher
from ragrouter.serving.config import BatchingConfig, CostTargetConfig
from ragrouter.serving.cost_target import CostTarget


def _lengths(prompts: list[str]) -> np.ndarray:
    return np.array([len(p) for p in prompts], dtype=np.float64)


def test_concurrent_requests_are_scored_together_and_each_gets_its_own_scores():
    batches: list[int] = []

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(_lengths, BatchingConfig(max_size=64, max_wait_ms=50), on_batch=batches.append)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.score(["x" * i, "y" * (i + 100)]) for i in range(1, 11)))
        finally:
            await batcher.stop()

    results = asyncio.run(main())
    for i, scores in enumerate(results, start=1):
        np.testing.assert_array_equal(scores, [i, i + 100])
    assert sum(batches) == 20 and len(batches) <= 2  # not ten batches of two


def test_a_batch_never_exceeds_max_size_and_one_lone_request_waits_at_most_max_wait():
    batches: list[int] = []

    async def main() -> float:
        batcher = MicroBatcher(_lengths, BatchingConfig(max_size=4, max_wait_ms=20), on_batch=batches.append)
        batcher.start()
        try:
            await asyncio.gather(*(batcher.score(["p"]) for _ in range(10)))
            started = time.perf_counter()
            await batcher.score(["alone"])
            return time.perf_counter() - started
        finally:
            await batcher.stop()

    alone = asyncio.run(main())
    assert max(batches) <= 4 and sum(batches) == 11
    assert alone < 0.5


def test_without_a_wait_what_queues_while_a_batch_is_scored_is_the_next_batch():
    batches: list[int] = []

    def slow(prompts: list[str]) -> np.ndarray:
        time.sleep(0.2)
        return _lengths(prompts)

    async def main() -> None:
        batcher = MicroBatcher(slow, BatchingConfig(max_size=32, max_wait_ms=0), on_batch=batches.append)
        batcher.start()
        try:
            first = asyncio.create_task(batcher.score(["first"]))
            await asyncio.sleep(0.05)  # `first` is being scored alone: nothing waited for company
            await asyncio.gather(first, *(batcher.score([f"q{i}"]) for i in range(10)))
        finally:
            await batcher.stop()

    asyncio.run(main())
    assert batches == [1, 10]


def test_a_request_that_gave_up_before_its_batch_started_is_not_scored():
    scored: list[str] = []
    release = threading.Event()

    def slow(prompts: list[str]) -> np.ndarray:
        scored.extend(prompts)
        release.wait(5)
        return _lengths(prompts)

    async def main() -> None:
        batcher = MicroBatcher(slow, BatchingConfig(max_size=1, max_wait_ms=0))
        batcher.start()
        try:
            first = asyncio.create_task(batcher.score(["first"]))
            await asyncio.sleep(0.1)  # `first` is being scored; the next one queues behind it
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(batcher.score(["abandoned"]), 0.1)
            release.set()
            await first
            await batcher.score(["after"])
        finally:
            await batcher.stop()

    asyncio.run(main())
    assert scored == ["first", "after"]


def test_the_rolling_threshold_holds_the_share_on_shifted_scores():
    rng = np.random.default_rng(0)
    target = CostTarget(CostTargetConfig(window=500, warmup=100), calibrated_threshold=0.5, calibrated_fraction=0.3)
    decisions = []
    for _ in range(200):
        scores = rng.beta(8, 2, size=10)  # traffic unlike training: most scores far above 0.5
        to_strong = scores >= target.threshold()
        target.observe(scores, to_strong)
        decisions.extend(to_strong)
    assert np.mean(decisions[:100]) > 0.9  # the calibrated threshold, before warm-up
    assert abs(np.mean(decisions[200:]) - 0.3) < 0.05
    assert target.live_share == pytest.approx(np.mean(decisions[-500:]))


def test_other_fractions_read_the_training_quantiles_until_warm():
    quantiles = np.linspace(0.0, 1.0, 101)  # uniform training scores
    target = CostTarget(CostTargetConfig(warmup=10, window=10), 0.5, 0.5, quantiles.tolist())
    assert target.threshold(0.2) == pytest.approx(0.8)
    assert target.threshold(0.0) == float("inf")
    target.observe(np.full(10, 0.1), np.zeros(10, dtype=bool))
    assert target.threshold(0.2) == pytest.approx(0.1)
