"""Where a crawl turns small SBOMs into rows ahead of its writer: its reader thread, or worker
processes.

Decoding an SBOM is pure Python work (a few milliseconds each), and in the crawl's process it
holds the GIL against the event loop and the writer, which release and retake it at every
socket call and every row (each retake can wait a whole switch interval behind a decoding
thread). Once a crawl has met enough SBOMs to pay a process's start-up, they go to worker
processes (the machine's other cores): bytes in, plain rows out (``catalog.store.sbom_rows``,
which imports no SQLAlchemy). At most two per process are in flight: memory stays bounded by
the crawl's batches, as on the thread.

A worker that dies (killed, out of memory) breaks the pool: the SBOMs it held, and every one
after, are prepared on the thread instead, with the same rows and errors; nothing is lost and
nothing waits for a dead process (the pool fails its futures when one of its processes ends).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor

from catalog.oci.boundedjson import first_line
from catalog.store import sbom_rows
from catalog.store.documents import COLUMNS, SbomDoc

log = logging.getLogger(__name__)

# SBOMs a crawl prepares on its thread before it starts worker processes: a spawned
# interpreter costs a few hundred milliseconds of CPU (on another core), a small SBOM a few.
PROCESS_AFTER = 64
_IN_FLIGHT = 2  # SBOMs per worker process sent and not yet answered


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
                initargs=(sbom_rows.__name__,),
            )
            # The first submission starts the processes: off the event loop.
            probes = await loop.run_in_executor(
                self._thread, lambda: [pool.submit(os.getpid) for _ in range(self._processes)]
            )
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
        if not isinstance(doc.source, bytes):
            spool, doc.source = doc.source, doc.source.read()
            spool.close()
        async with self._slots:
            pool = self._pool
            try:
                if pool is None:  # broken while this one waited for a slot
                    raise RuntimeError("the worker processes are gone")
                doc.prepared = await asyncio.wrap_future(
                    pool.submit(
                        sbom_rows.prepare,
                        doc.layer_digest,
                        doc.source,
                        wrapped=doc.wrapped,
                        budget=budget,
                        columns=COLUMNS,
                    )
                )
                self.in_processes += 1
                return
            except Exception as exc:  # a dead worker (BrokenProcessPool), or anything else
                self._break(pool, exc)
        await loop.run_in_executor(self._thread, doc.prepare, budget)

    def _break(self, pool: ProcessPoolExecutor | None, exc: Exception) -> None:
        if self.broken:
            return
        log.warning("SBOM worker processes stopped (%s): preparing on a thread", first_line(exc))
        self.broken = True
        self._pool = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the worker processes (waiting for them off the event loop)."""
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, pool.shutdown)
