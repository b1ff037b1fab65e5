"""Where a crawl turns small SBOMs into rows ahead of its writer: its reader thread, or worker
processes.

Decoding an SBOM is pure Python work (a few milliseconds each), and in the crawl's process it
holds the GIL against the event loop and the writer, which release and retake it at every
socket call and every row (each retake can wait a whole switch interval behind a decoding
thread). Once a crawl has met enough SBOMs to pay a process's start-up, they go to worker
processes (the machine's other cores): bytes in, plain rows out (``catalog.store.sbom_rows``,
which imports no SQLAlchemy). They go in batches (``_batches``): an SBOM waits up to
:data:`LINGER` for others to share its task, as a task's hand-off costs this process about a
third of a millisecond whatever it carries. A batch holds at most :data:`BATCH_SBOMS` SBOMs and
:data:`BATCH_BYTES` of them (one larger SBOM goes alone), and at most two batches per process
are in flight: memory stays bounded by the crawl's batches, as on the thread.

A worker that dies (killed, out of memory) breaks the pool: the SBOMs it held, and every one
after, are prepared on the thread instead, with the same rows and errors; nothing is lost and
nothing waits for a dead process (the pool fails its futures when one of its processes ends).
A batch not answered within :data:`BATCH_DEADLINE` (a worker stopped from outside, a machine
swapping) gets the worker processes killed, and its SBOMs go to the thread like a dead worker's:
the fault is the process's, not the documents' (whose decoding is bounded in bytes), so none of
them is recorded as undecodable for good.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
import sys
import threading
import types
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import NamedTuple

from catalog.index import _batches
from catalog.oci.boundedjson import first_line
from catalog.store.documents import COLUMNS, SbomDoc
from catalog.store.sbom_rows import PreparedSbom

log = logging.getLogger(__name__)

# SBOMs a crawl prepares on its thread before it starts worker processes: a spawned
# interpreter costs a few hundred milliseconds of CPU (on another core), a small SBOM a few.
PROCESS_AFTER = 64
_IN_FLIGHT = 2  # batches per worker process sent and not yet answered
BATCH_SBOMS = 16
# Bytes of SBOMs a batch carries, unless one alone is larger: what was in flight per task when
# tasks carried one SBOM each (of at most ``SbomLimits.max_whole``).
BATCH_BYTES = 1024 * 1024
# Seconds an SBOM waits for others to share its batch: a repository's SBOMs arrive within a few
# milliseconds of each other, and the crawl has other repositories in flight meanwhile.
LINGER = 0.02
# Seconds a batch may take once sent (a megabyte of SBOMs takes a worker ~30 ms; it may queue
# behind another batch in its process).
BATCH_DEADLINE = 60.0
_SPAWNING = threading.Lock()  # held while ``__main__`` is a stand-in


class _Waiting(NamedTuple):
    """An SBOM queued for a batch, and where its outcome goes."""

    doc: SbomDoc
    data: bytes  # its source, read whole
    budget: int
    outcome: asyncio.Future[PreparedSbom | None]


class _Lost(Exception):
    """The worker processes are gone: the SBOM goes to the thread."""


def default_processes() -> int:
    """Worker processes for a crawl: the cores beside the crawl's own, at most two (the
    registry being crawled may share the machine)."""
    return max(0, min(2, (os.cpu_count() or 1) - 1))


class SbomPreparer:
    """Prepares SBOMs (``SbomDoc.prepare``'s outcome) on ``thread`` or in worker processes."""

    def __init__(
        self, thread: Executor, *, processes: int | None = None, after: int | None = None
    ) -> None:
        self._thread = thread
        self._processes = default_processes() if processes is None else processes
        self._after = PROCESS_AFTER if after is None else after
        self._seen = 0
        self._slots = asyncio.Semaphore(_IN_FLIGHT * max(1, self._processes))
        self._starting: asyncio.Task[None] | None = None
        self._pool: ProcessPoolExecutor | None = None  # once its processes answered
        self.broken = False  # a worker died: the thread prepares the rest
        self.pids: set[int] = set()  # the worker processes that answered (for tests)
        self.in_processes = 0  # SBOMs prepared by workers
        self.batches = 0  # tasks the workers answered
        self._queued: list[_Waiting] = []  # the batch being gathered
        self._queued_bytes = 0
        self._timer: asyncio.TimerHandle | None = None  # sends the batch after LINGER
        self._sending: dict[asyncio.Task[None], list[_Waiting]] = {}  # batches sent

    async def start(self) -> None:
        """Start the worker processes (without blocking the event loop) and wait until they
        answer; on any failure the thread goes on preparing."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        # Spawned, not forked: this process runs threads (the event loop's, the writer's),
        # whose locks a fork would copy held.
        loop = asyncio.get_running_loop()
        pool: ProcessPoolExecutor | None = None
        try:
            # Making the pool can fail too (its queues need POSIX semaphores: no /dev/shm).
            pool = ProcessPoolExecutor(
                self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=importlib.import_module,
                initargs=(_batches.__name__,),
            )
            # The first submissions start the processes: off the event loop.
            probes = await loop.run_in_executor(self._thread, _first_tasks, pool, self._processes)
            self.pids.update(await asyncio.gather(*map(asyncio.wrap_future, probes)))
        except Exception as exc:
            log.warning("SBOM worker processes did not start: %s", first_line(exc))
            self.broken = True
            if pool is not None:
                await loop.run_in_executor(self._thread, pool.shutdown)
            return
        self._pool = pool

    def _ready(self) -> ProcessPoolExecutor | None:
        if self.broken or self._processes == 0:
            return None
        self._seen += 1
        if self._starting is None and self._seen > self._after:
            self._starting = asyncio.ensure_future(self._start())
        return self._pool

    async def prepare(self, doc: SbomDoc, budget: int) -> None:
        """``doc.prepare(budget)``, in a worker process when they run. The source is read
        whole (it is small) and kept as bytes when the writer must stream it after all."""
        loop = asyncio.get_running_loop()
        if self._ready() is None:
            await loop.run_in_executor(self._thread, doc.prepare, budget)
            return
        data = doc.source
        if not isinstance(data, bytes):
            spool, doc.source = data, (data := data.read())
            spool.close()
        outcome: asyncio.Future[PreparedSbom | None] = loop.create_future()
        self._queue(_Waiting(doc, data, budget, outcome))
        try:
            doc.prepared = await outcome
        except _Lost:
            await loop.run_in_executor(self._thread, doc.prepare, budget)
            return
        self.in_processes += 1

    def _queue(self, waiting: _Waiting) -> None:
        size = len(waiting.data)
        if self._queued and self._queued_bytes + size > BATCH_BYTES:
            self._flush()
        self._queued.append(waiting)
        self._queued_bytes += size
        if len(self._queued) >= BATCH_SBOMS or self._queued_bytes >= BATCH_BYTES:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LINGER, self._flush)

    def _flush(self) -> None:
        """Send the batch gathered so far (once a slot is free)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._queued, self._queued_bytes = self._queued, [], 0
        if batch:
            task = asyncio.ensure_future(self._send(batch))
            self._sending[task] = batch
            task.add_done_callback(self._sending.pop)

    async def _send(self, batch: list[_Waiting]) -> None:
        try:
            async with self._slots:
                pool = self._pool
                items = [(w.doc.layer_digest, w.data, w.doc.wrapped, w.budget) for w in batch]
                deadline = asyncio.timeout(BATCH_DEADLINE)
                try:
                    if pool is None:  # broken while this batch waited for a slot
                        raise RuntimeError("the worker processes are gone")
                    sent = pool.submit(_batches.prepare_batch, items, COLUMNS)
                    async with deadline:
                        outcomes = await asyncio.wrap_future(sent)
                except (Exception, asyncio.CancelledError) as exc:
                    # A dead worker (BrokenProcessPool), its pool shut down (its futures
                    # cancelled), a hung one, or anything else; not this task's own
                    # cancellation.
                    if isinstance(exc, asyncio.CancelledError) and _cancelling():
                        raise
                    hung = deadline.expired()
                    if hung:
                        exc = TimeoutError(f"a batch not answered within {BATCH_DEADLINE:g} s")
                    self._break(pool, exc, kill=hung)
                    for waiting in batch:
                        if not waiting.outcome.done():
                            waiting.outcome.set_exception(_Lost())
                    return
            self.batches += 1
            for waiting, prepared in zip(batch, outcomes, strict=True):
                if not waiting.outcome.done():  # its crawl may have been cancelled
                    waiting.outcome.set_result(prepared)
        finally:  # cancelled (the preparer closing): nothing may wait for it any longer
            _cancel(batch)

    def _break(
        self, pool: ProcessPoolExecutor | None, exc: BaseException, *, kill: bool = False
    ) -> None:
        if kill and pool is not None:  # a hung process would never end on its own
            # None once shut down; ``kill`` skips a process already reaped (its pid reusable).
            for process in list((pool._processes or {}).values()):
                process.kill()
        if self.broken:
            return
        reason = first_line(exc) or type(exc).__name__
        log.warning("SBOM worker processes stopped (%s): preparing on a thread", reason)
        self.broken = True
        self._pool = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the worker processes (waiting for them off the event loop)."""
        if self._timer is not None:
            self._timer.cancel()
        _cancel(self._queued)
        sending = dict(self._sending)
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        for batch in sending.values():  # those cancelled before they began
            _cancel(batch)
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, pool.shutdown)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _cancel(batch: list[_Waiting]) -> None:
    for waiting in batch:
        waiting.outcome.cancel()


def _first_tasks(pool: ProcessPoolExecutor, count: int) -> list[Future[int]]:
    """A task for each of the pool's processes, which starts them all, with no ``__main__`` of
    this process's to import: a spawned process imports it again (the CLI's command module, a
    bench's harness…), a cost of its start-up for modules the worker never uses. The stand-in
    is there only while the processes are spawned (``spawn`` reads it then, to tell them)."""
    with _SPAWNING:  # two crawls' preparers (``serve``) would restore each other's stand-in
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            return [pool.submit(os.getpid) for _ in range(count)]
        finally:
            sys.modules["__main__"] = main
