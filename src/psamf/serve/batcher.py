"""Micro-batching: concurrent text requests share one model call.

Requests go on an asyncio queue; one task takes the first, then keeps taking for up to
``wait_ms`` or until ``max_batch`` texts, and runs the model once in a worker thread (one thread:
the model is never called from two threads at once, and the event loop stays free). A batch that
fails on a caller's input (``InputError``) is rerun request by request so that only the bad
request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from psamf.errors import InputError

# predict(texts, audio, vision) -> one result dict per text
PredictFn = Callable[[list[str], list | None, list | None], list[dict]]


@dataclass
class _Job:
    texts: list[str]
    audio: list | None
    vision: list | None
    future: asyncio.Future = field(repr=False)


@dataclass
class BatchStats:
    """What the batcher did: model calls by number of requests they served."""

    calls: int = 0
    requests: int = 0
    texts: int = 0
    requests_per_call: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"model_calls": self.calls, "requests": self.requests, "texts": self.texts,
                "max_requests_per_call": max(self.requests_per_call, default=0),
                "requests_per_call": {str(k): v for k, v in
                                      sorted(self.requests_per_call.items())}}


class MicroBatcher:
    def __init__(self, predict: PredictFn, *, max_batch: int, wait_ms: float) -> None:
        self._predict = predict
        self._max_batch = max_batch
        self._wait_s = wait_ms / 1000
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="psamf-model")
        self.stats = BatchStats()

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="psamf-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._pool.shutdown(wait=True)

    async def submit(self, texts: list[str], audio: list | None = None,
                     vision: list | None = None) -> tuple[list[dict], int]:
        """The readings of ``texts`` and how many requests shared their model call."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(texts, audio, vision, future))
        return await future

    async def _loop(self) -> None:
        assert self._queue is not None
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].texts)
            deadline = time.monotonic() + self._wait_s
            while size < self._max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                size += len(job.texts)
            jobs = [j for j in jobs if not j.future.done()]  # a timed-out caller left
            if jobs:
                await self._run(jobs)

    async def _run(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        texts = [t for j in jobs for t in j.texts]
        with_features = any(j.audio is not None or j.vision is not None for j in jobs)
        audio = vision = None
        if with_features:  # per text: that request's frames, or None
            audio = [a for j in jobs for a in (j.audio or [None] * len(j.texts))]
            vision = [v for j in jobs for v in (j.vision or [None] * len(j.texts))]
        try:
            results = await loop.run_in_executor(self._pool, self._predict, texts, audio, vision)
        except InputError as err:
            if len(jobs) == 1:
                _settle(jobs[0], error=err)
                return
            for job in jobs:  # find the culprit: each request alone
                await self._run([job])
            return
        except Exception as err:  # the model failed: every caller hears of it
            for job in jobs:
                _settle(job, error=err)
            return
        self.stats.calls += 1
        self.stats.requests += len(jobs)
        self.stats.texts += len(texts)
        self.stats.requests_per_call[len(jobs)] += 1
        start = 0
        for job in jobs:
            _settle(job, value=(results[start:start + len(job.texts)], len(jobs)))
            start += len(job.texts)


def _settle(job: _Job, *, value: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(value)
