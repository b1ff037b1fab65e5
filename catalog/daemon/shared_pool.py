"""A server's event loop's default executor: work handed to it runs on the threads of the work
it belongs to, when that work brought some (:mod:`catalog.threads`), else here."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from catalog.threads import brought

T = TypeVar("T")


class SharedPool(ThreadPoolExecutor):
    """asyncio takes only a ``ThreadPoolExecutor`` as a loop's default. ``submit`` runs in the
    caller's context, the task's, which says whose work it is."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers, thread_name_prefix="asyncio")

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        own = brought()
        if own is not None and own is not self:
            return own.submit(fn, *args, **kwargs)
        return super().submit(fn, *args, **kwargs)


# Loops given a pool: a second server on one loop (tests run two) keeps the first's, which the
# loop's own shutdown then waits for.
_GIVEN: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Make a :class:`SharedPool` ``loop``'s default executor, once."""
    if loop not in _GIVEN:
        loop.set_default_executor(SharedPool())
        _GIVEN.add(loop)
