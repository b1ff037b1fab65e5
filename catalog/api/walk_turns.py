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

import contextlib

from catalog.keyed_slots import KeyedSlots
from catalog.principals import Principal, PrincipalKind


class WalkTurns:
    """At most ``at_once`` walks in the server, and one per caller at a time."""

    def __init__(self, at_once: int) -> None:
        self._turns = KeyedSlots(at_once, per_key=1)

    def callers(self) -> int:
        """Callers with a walk running or waiting."""
        return len(self._turns)

    def held(self, principal: Principal) -> contextlib.AbstractAsyncContextManager[None]:
        anonymous = principal.kind is PrincipalKind.ANONYMOUS
        return self._turns.held(None if anonymous else str(principal))
