"""Which threads a coroutine's blocking work runs on: the event loop's shared pool, unless the
work it belongs to brought threads of its own (:func:`running_on`).

The gate's live look-ups bring their own (:mod:`catalog.gate._live_work`): their writes wait
for SQLite's write lock (up to its busy timeout, 10 s) during an index run, and on the shared
pool (``min(32, cores + 4)``: 6 threads on 2 cores) eight of them held every thread the
server's other calls read on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any, ParamSpec, TypeVar

__all__ = ["run_in", "running_on", "to_thread"]

P = ParamSpec("P")
T = TypeVar("T")

_OWN: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "catalog_threads", default=None
)


@contextlib.contextmanager
def running_on(threads: Executor) -> Iterator[None]:
    """Within the block, and in the tasks started in it, blocking work runs on ``threads``."""
    token = _OWN.set(threads)
    try:
        yield
    finally:
        _OWN.reset(token)


def run_in(threads: Executor | None, work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """``work(*args)`` on ``threads``; with None, on the current work's own threads, else on the
    event loop's shared pool."""
    return asyncio.get_running_loop().run_in_executor(threads or _OWN.get(), work, *args)


async def to_thread(work: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """:func:`asyncio.to_thread` on the current work's threads (see :func:`run_in`)."""
    call = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
    return await run_in(None, call)
