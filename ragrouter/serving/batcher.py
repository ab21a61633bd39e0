"""Micro-batching: concurrent requests are scored together on the one thread that owns the router.

Scoring one prompt at a time leaves most of the encoder's batched throughput unused; the
batcher takes the first waiting request and whatever else is queued behind it (for at most
`max_wait_ms` more; by default none), up to `max_size` prompts, and scores them as one batch. The router thread also runs the
work that changes the router (knowledge-base syncs, version swaps), so scoring never sees a
router half-changed. A request that gave up (its time budget spent) before its batch
started is dropped from the batch, not computed.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import numpy as np

from ragrouter.serving.config import BatchingConfig

T = TypeVar("T")


@dataclass
class _Pending:
    prompts: Sequence[str]
    future: asyncio.Future[np.ndarray]
    queued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    def __init__(self, score: Callable[[list[str]], np.ndarray], config: BatchingConfig, on_batch: Callable[[int], None] | None = None):
        self._score = score
        self.config = config
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.router_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router")
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self.router_thread.shutdown(wait=True, cancel_futures=True)

    async def on_router_thread(self, work: Callable[[], T]) -> T:
        """Run `work` on the router thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self.router_thread, work)

    async def score(self, prompts: Sequence[str]) -> np.ndarray:
        """P(strong needed) per prompt, scored in a batch with whatever else is waiting."""
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(prompts, future))
        return await future

    async def _gather(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        size = len(batch[0].prompts)
        deadline = time.perf_counter() + self.config.max_wait_ms / 1000.0
        while size < self.config.max_size:
            remaining = deadline - time.perf_counter()
            try:
                item = self._queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self._queue.get(), remaining)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            batch.append(item)
            size += len(item.prompts)
        return batch

    async def _run(self) -> None:
        while True:
            batch = [p for p in await self._gather() if not p.future.done()]  # done: its caller gave up
            if not batch:
                continue
            prompts = [prompt for pending in batch for prompt in pending.prompts]
            try:
                scores = await self.on_router_thread(lambda: self._score(prompts))
            except Exception as error:  # the callers report it; the batcher keeps serving
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            if self._on_batch is not None:
                self._on_batch(len(prompts))
            start = 0
            for pending in batch:
                end = start + len(pending.prompts)
                if not pending.future.done():
                    pending.future.set_result(scores[start:end])
                start = end
