"""Outcomes saved in batches: what is submitted while a batch is being saved goes into the next.

Tasks finishing together then share a transaction: a commit per task would cost more than a
task that changed nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Hands items to ``save`` in batches, off the event loop; ``save`` returns one result per
    item, in order. One batch is saved at a time."""

    def __init__(self, save: Callable[[list[T]], list[R]]) -> None:
        self._save = save
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch; → its result, or what that batch's save raised."""
        result: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.append((item, result))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await result

    async def drain(self) -> None:
        """Wait until everything submitted is saved (or failed to be)."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    results = await asyncio.to_thread(self._save, [item for item, _ in batch])
                except Exception as exc:
                    for _, result in batch:
                        if not result.done():  # its submitter may have been cancelled
                            result.set_exception(exc)
                    continue
                for (_, result), value in zip(batch, results, strict=True):
                    if not result.done():
                        result.set_result(value)
        finally:
            self._flushing = None
