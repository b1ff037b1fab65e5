"""What the tasks of one run share inside a worker, built once and dropped when idle."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from catalog.claims import Claims
from replication.image import RunState

V = TypeVar("V")


@dataclass(slots=True)
class RunContext:
    """What the tasks of one run share inside this worker."""

    state: RunState
    rule: str  # the rule's name (metrics and log lines say it)
    # One tag listing per repository and run, whichever task asks first; a failed one fails
    # the tasks waiting for it, and the next task tries again.
    listings: Claims[str, frozenset[str]] = field(default_factory=Claims)

    async def listing(self, repository: str) -> frozenset[str]:
        async with self.listings.hold(repository) as held:
            if held.owner:
                held.set(frozenset([tag async for tag in self.state.source.tags(repository)]))
            return held.value

    def known(self, repository: str, listing: frozenset[str]) -> None:
        """A listing the planner made already."""
        self.listings.put(repository, listing)


class RunCache(Generic[V]):
    """One value per run, built by whichever caller asks first (a failed build fails the
    callers waiting for it; the next caller builds again), kept until the run is idle here."""

    def __init__(self, build: Callable[[int], Awaitable[V]], *, idle: float) -> None:
        self._build = build
        self._idle = idle  # seconds a run's value outlives the last time it was asked for
        self._values: Claims[int, V] = Claims()
        self._used: dict[int, float] = {}  # run id → when it was last asked for

    async def get(self, run_id: int) -> V:
        self._used[run_id] = time.monotonic()
        async with self._values.hold(run_id) as held:
            if held.owner:
                held.set(await self._build(run_id))
            return held.value

    def evict(self, active: Collection[int], now: float) -> None:
        """Drop the values of the runs not ``active`` and not asked for since ``now - idle``."""
        idle = [r for r, t in self._used.items() if r not in active and now - t > self._idle]
        for run_id in idle:
            self._values.forget(run_id)
            del self._used[run_id]

    def clear(self) -> None:
        self._values.clear()
        self._used.clear()
