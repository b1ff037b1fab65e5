"""Which threads blocking work runs on: those the work it belongs to brought
(:func:`running_on`), else the event loop's shared pool.

The gate's live look-ups bring their own (:mod:`catalog.gate._live_work`): their writes wait
for SQLite's write lock (up to its busy timeout, 10 s) while an index run holds it, and a name
that resolves slowly holds a thread in ``getaddrinfo``; on the shared pool
(``min(32, cores + 4)``: 6 threads on 2 cores) six of them held every thread the server's
other calls read on. A server's loop asks :func:`brought` where work handed to it goes
(:class:`catalog.daemon.shared_pool.SharedPool`), so every way of getting there counts the
same: ``asyncio.to_thread``, ``run_in_executor(None, …)``, and the loop's own ``getaddrinfo``.
Here nothing starts a thread: a command that never asks a registry imports no pool.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from concurrent.futures import Executor

__all__ = ["brought", "running_on"]

_OWN: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "catalog_threads", default=None
)


@contextlib.contextmanager
def running_on(threads: Executor) -> Iterator[None]:
    """Within the block, and in the tasks started in it, work handed to a server's loop runs on
    ``threads``."""
    token = _OWN.set(threads)
    try:
        yield
    finally:
        _OWN.reset(token)


def brought() -> Executor | None:
    """The threads the current work brought (None: it brought none)."""
    return _OWN.get()
