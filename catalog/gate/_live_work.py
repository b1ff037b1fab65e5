"""The registry work the gate starts for images the catalog has not seen, bounded.

Anyone who may check an image chooses which image: without a bound, a burst of checks of new
images (or of one new image, on every node of a rollout) starts as many crawls at once, each
holding connections and documents in memory. On a server's loop their blocking work (resolving
names, decoding, the catalog's reads and writes) runs on threads of their own
(one a slot), not the loop's shared pool (:mod:`catalog.threads`): a write waits for
SQLite's write lock while an index run holds it, and six waiting there held every shared
thread, so every other call's reads waited too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Executor
from typing import Any, TypeVar

from catalog.keyed_slots import KeyedSlots
from catalog.threads import running_on

T = TypeVar("T")

# Registry calls the gate makes at once; a check past them waits for a slot (within its
# deadline, when it has one). One registry host has at most half of them: a registry that
# answers slowly (its own, or a hostile one a broad policy selects) cannot hold every slot and
# stall the checks of every other registry.
LIVE_AT_ONCE = 8


class LiveWork:
    """At most ``at_once`` calls running at a time, at most half of them (one at least) for
    one host; calls for one key at once share one run, which is cancelled when every caller
    waiting for it has left. Their blocking work has ``at_once`` threads, one a slot: a host's
    share of the slots is its share of the threads. (Work a call left behind, a name resolving
    past its connect timeout, keeps its thread until it ends.)"""

    def __init__(self, at_once: int = LIVE_AT_ONCE) -> None:
        if at_once < 1:
            raise ValueError("at_once must be at least 1")
        self._at_once = at_once
        # Made for the loop that first asks (see run).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = self._new_slots()
        self._runs: dict[Hashable, tuple[asyncio.Task[Any], list[int]]] = {}

    @property
    def running(self) -> int:
        """Calls running or waiting for a slot (one per key)."""
        return len(self._runs)

    async def run(self, host: str, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        """``work()``'s result, a call to registry ``host``; ``key`` names what it asks."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a gate used on a new loop (the CLI's): nothing carries over
            self._loop, self._slots, self._runs = loop, self._new_slots(), {}
        held = self._runs.get(key)
        if held is None:
            task: asyncio.Task[T] = loop.create_task(self._bounded(host, work))
            held = task, [0]
            self._runs[key] = held
            task.add_done_callback(lambda done: self._finished(key, done))
        task, waiters = held
        waiters[0] += 1
        try:
            return await asyncio.shield(task)  # one caller leaving ends no other's call
        finally:
            waiters[0] -= 1
            if not waiters[0] and not task.done():
                # No caller left to answer: free the slot (or never take it). Forgotten now, so
                # a caller arriving before the cancellation lands starts a run of its own.
                self._forget(key, task)
                task.cancel()

    def close(self) -> None:
        """No more work: the threads end, each once the work it holds (if any) ends, without
        waiting here (a write may wait out SQLite's busy timeout)."""
        threads = self.__dict__.get("_threads")  # never made: nothing to end
        if threads is not None:
            threads.shutdown(wait=False, cancel_futures=True)

    @functools.cached_property
    def _threads(self) -> Executor:
        """Made when a registry is first asked: a warm check's process never starts a pool."""
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(self._at_once, thread_name_prefix="gate-live")

    def _new_slots(self) -> KeyedSlots:
        return KeyedSlots(self._at_once, max(1, self._at_once // 2))  # half of them a host

    async def _bounded(self, host: str, work: Callable[[], Awaitable[T]]) -> T:
        async with self._slots.held(host):
            with running_on(self._threads):
                return await work()

    def _finished(self, key: Hashable, done: asyncio.Task[Any]) -> None:
        self._forget(key, done)
        if not done.cancelled():
            done.exception()  # retrieved even when every caller has left

    def _forget(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if self._runs.get(key, (None,))[0] is task:
            del self._runs[key]
