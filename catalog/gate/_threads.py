"""Threads of a component's own.

On the event loop's shared pool (``min(32, cores + 4)`` threads: 6 on 2 cores), a few long
calls (what-ifs over a catalog, large lists, reads of a stalled database) took every thread,
and the gate's checks (admission's within their deadline) and the decision log's writes waited
behind them; a write waiting 5 s turns health NOT_SERVING.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")
P = ParamSpec("P")


class OwnThreads:
    """``count`` threads named ``name``, made when first asked for."""

    def __init__(self, count: int, name: str) -> None:
        self._count, self._name = count, name
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(*args, **kwargs)`` on one of the threads, in this context (as ``to_thread``)."""
        if self._pool is None:
            # Imported here: a command that asks once decides inline, and never needs it.
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self._count, thread_name_prefix=self._name)
        call = partial(contextvars.copy_context().run, work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)
