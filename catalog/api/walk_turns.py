"""Turns to walk the catalog (``EvaluateCatalog``): a few for the whole server, one per caller.

Each walk holds a thread of the event loop's shared pool (6 threads on 2 cores) from its first
image to its last. Unbounded, a few walks held every thread and each check, admission's within
its deadline, waited for one to end. With the server's turns alone, one caller's evaluations
filled them and every other caller's waited behind. So a caller waits for its own turn first
and only then for one of the server's; its queued evaluations hold none of the server's turns.
The anonymous principal (a server without authentication: every caller is it) is one caller
per call here, or a development server would walk one evaluation at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from catalog.principals import Principal, PrincipalKind


class WalkTurns:
    """At most ``at_once`` walks in the server, and one per caller at a time."""

    def __init__(self, at_once: int) -> None:
        self._server = asyncio.Semaphore(at_once)
        # A caller's turn and how many of its walks run or wait for it; the map holds only
        # callers with walks running or waiting (any number of callers: no growth past them).
        self._callers: dict[str, tuple[asyncio.Lock, int]] = {}

    def callers(self) -> int:
        """Callers with a walk running or waiting."""
        return len(self._callers)

    @contextlib.asynccontextmanager
    async def held(self, principal: Principal) -> AsyncIterator[None]:
        if principal.kind is PrincipalKind.ANONYMOUS:
            async with self._server:
                yield
            return
        caller = str(principal)
        turn, walks = self._callers.get(caller, (asyncio.Lock(), 0))
        self._callers[caller] = (turn, walks + 1)
        try:
            async with turn, self._server:
                yield
        finally:
            turn, walks = self._callers[caller]
            if walks > 1:
                self._callers[caller] = (turn, walks - 1)
            else:
                del self._callers[caller]
