"""Dynamic micro-batching: concurrent requests share one forward pass, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from textcnn import Result, TextClassifier

log = logging.getLogger("textcnn.service")


@dataclass
class _Job:
    texts: list[str]
    explain: bool
    future: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class MicroBatcher:
    """Gathers requests until ``max_batch_size`` texts or ``max_wait_ms``, then runs them
    as one ``classify`` call in a worker thread (under ``torch.inference_mode``).

    A request larger than ``max_batch_size`` runs as a batch of its own.
    """

    def __init__(
        self,
        classifier: TextClassifier,
        max_batch_size: int,
        max_wait_ms: float,
        explain_spans: int = 5,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.classifier = classifier
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.explain_spans = explain_spans
        self.on_batch = on_batch
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.task: asyncio.Task | None = None
        self._pending: deque[_Job] = deque()
        self.in_flight = 0  # requests taken and not yet answered

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def classify(self, texts: list[str], explain: bool) -> list[Result]:
        """All labels for every text, in order (the caller cuts them to top_k)."""
        job = _Job(texts, explain)
        self.in_flight += 1
        try:
            await self.queue.put(job)
            return await job.future
        finally:
            self.in_flight -= 1

    async def drain(self, poll_s: float = 0.01) -> None:
        """Return once every request taken has its answer."""
        while self.in_flight:
            await asyncio.sleep(poll_s)

    def _take(self) -> _Job:
        """The next waiting job without waiting: a carried-over one first, then the queue."""
        return self._pending.popleft() if self._pending else self.queue.get_nowait()

    async def _gather(self) -> list[_Job]:
        loop = asyncio.get_running_loop()
        first = self._pending.popleft() if self._pending else await self.queue.get()
        jobs, size = [first], len(first.texts)
        deadline = loop.time() + self.max_wait
        while size < self.max_batch_size:
            try:
                job = self._take()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                # poll rather than wait_for(queue.get()), which can drop an item on timeout
                await asyncio.sleep(min(0.0005, remaining))
                continue
            if size + len(job.texts) > self.max_batch_size:
                self._pending.appendleft(job)  # first in the next batch
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._gather()
            try:
                results = await self._classify(jobs)
            except Exception:  # one job's texts can fail the batch: run each job alone
                await self._one_by_one(jobs)
                continue
            start = 0
            for job in jobs:
                if not job.future.done():  # a client that went away has a cancelled future
                    job.future.set_result(results[start : start + len(job.texts)])
                start += len(job.texts)

    async def _classify(self, jobs: list[_Job]) -> list[Result]:
        """One forward pass over the texts of ``jobs``, in the worker thread."""
        texts = [t for job in jobs for t in job.texts]
        work = partial(
            self.classifier.classify,
            texts,
            top_k=None,
            explain=any(job.explain for job in jobs),
            evidence_spans=self.explain_spans,
        )
        results = await asyncio.get_running_loop().run_in_executor(self.executor, work)
        if self.on_batch is not None:
            self.on_batch(len(texts))
        return results

    async def _one_by_one(self, jobs: list[_Job]) -> None:
        """Each job on its own, so that only the one that fails gets the error."""
        for job in jobs:
            if job.future.done():
                continue
            try:
                results = await self._classify([job])
            except Exception as error:
                log.exception("a request failed in the model")
                if not job.future.done():
                    job.future.set_exception(error)
                continue
            if not job.future.done():
                job.future.set_result(results)
