"""Dynamic micro-batching: concurrent requests become one `nlp.pipe` call.

Requests wait in a bounded queue. A batch closes when its texts reach a word budget or when
its oldest request has waited `max_wait_ms`; it then runs on one inference thread, off the
event loop, while the next batch gathers. The pipelines' answers do not depend on batch-mates
(calibrated int8), so batching changes speed, never results. A full queue refuses work
(`QueueFull` → 503 + Retry-After) instead of growing without bound.
"""

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, List, Optional, Sequence

from .metrics import ServiceMetrics
from .settings import ServeSettings


class QueueFull(Exception):
    """More texts are waiting than `max_queue_texts` allows."""


class ShuttingDown(Exception):
    """The service is draining: it finishes what it has and takes nothing new."""


def count_words(text: str) -> int:
    """The batching budget's unit: cheap to count on the event loop, close to spaCy tokens."""
    return len(text.split()) + 1


@dataclass
class _Job:
    texts: List[str]
    vectors: bool
    future: asyncio.Future
    words: int
    enqueued: float = field(default_factory=time.perf_counter)


Process = Callable[[List[str], List[bool]], List[Any]]


class MicroBatcher:
    """Gathers submitted texts into batches and runs `process(texts, vectors_flags)` on them."""

    def __init__(self, process: Process, settings: ServeSettings, metrics: Optional[ServiceMetrics] = None):
        self.process = process
        self.settings = settings
        self.metrics = metrics or ServiceMetrics()
        self._queue: Deque[_Job] = deque()
        self._queued_texts = 0
        self._queued_words = 0
        self._wakeup: Optional[asyncio.Event] = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertprod-inference")
        self._task: Optional[asyncio.Task] = None
        self._closing = False

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bertprod-batcher")

    async def submit(self, texts: Sequence[str], vectors: bool = False) -> List[Any]:
        """Annotate `texts` in some micro-batch; returns one result per text, in order."""
        if self._closing:
            raise ShuttingDown()
        if not texts:
            return []
        if self._queued_texts + len(texts) > self.settings.max_queue_texts:
            raise QueueFull()
        job = _Job(list(texts), vectors, asyncio.get_running_loop().create_future(), sum(count_words(t) for t in texts))
        self._queue.append(job)
        self._queued_texts += len(job.texts)
        self._queued_words += job.words
        self.metrics.queue_texts.set(self._queued_texts)
        self._wakeup.set()
        return await job.future

    async def close(self) -> None:
        """Stop taking work, finish every queued request, then stop the inference thread."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather(self._queue[0].enqueued + self.settings.max_wait_ms / 1000.0)
            jobs = self._take_batch()
            started = time.perf_counter()
            for job in jobs:
                self.metrics.queue_wait.observe(started - job.enqueued)
            texts = [t for job in jobs for t in job.texts]
            flags = [job.vectors for job in jobs for _ in job.texts]
            try:
                results = await loop.run_in_executor(self._executor, self.process, texts, flags)
            except Exception as err:  # the pipeline failed: every request in the batch learns why
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            self.metrics.inference.observe(time.perf_counter() - started)
            self.metrics.batch_docs.observe(len(texts))
            self.metrics.batch_words.observe(sum(job.words for job in jobs))
            self.metrics.batch_requests.observe(len(jobs))
            self.metrics.docs.inc(len(texts))
            start = 0
            for job in jobs:
                if not job.future.done():  # a client that went away has a cancelled future
                    job.future.set_result(results[start : start + len(job.texts)])
                start += len(job.texts)

    async def _gather(self, deadline: float) -> None:
        """Wait for more requests until the word budget is met or the oldest one's wait is up."""
        while self._queued_words < self.settings.max_batch_words and not self._closing:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take_batch(self) -> List[_Job]:
        """Whole requests, oldest first, up to the word budget (always at least one)."""
        jobs, words = [], 0
        while self._queue and (not jobs or words + self._queue[0].words <= self.settings.max_batch_words):
            job = self._queue.popleft()
            jobs.append(job)
            words += job.words
            self._queued_texts -= len(job.texts)
            self._queued_words -= job.words
        self.metrics.queue_texts.set(self._queued_texts)
        return jobs
