"""One owner per key, the others wait for its result; results kept for reuse.

The owner does the work in its own task (no task is started here), so cancelling it stops the
work: a waiter then takes the key over, since a cancellation says nothing about the next try.
What an owner's exception means depends on the work: ``failures="raise"`` hands it to the
callers waiting on that owner (a failed tag listing fails every task that asked for it), and the
next caller tries again; ``failures="retry"`` lets a waiter take the key over (a blob one copy
failed to send is sent by the next copy that needs it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Turn(Generic[V]):
    """One owner's hold on a key."""

    __slots__ = ("error", "result", "settled")

    def __init__(self) -> None:
        self.settled = asyncio.Event()
        self.result: tuple[V] | None = None  # in a tuple, so that None can be a result
        self.error: Exception | None = None


class Held(Generic[V]):
    """What :meth:`Claims.hold` hands out: the duty to make the result (``owner``), or the
    result another caller made (``value``)."""

    __slots__ = ("_turn", "owner")

    def __init__(self, turn: _Turn[V], *, owner: bool) -> None:
        self._turn = turn
        self.owner = owner

    @property
    def value(self) -> V:
        if self._turn.result is None:
            raise RuntimeError("no result yet: the owner sets it")
        return self._turn.result[0]

    def set(self, value: V) -> None:
        """The owner's result, handed to the waiters and kept when the hold ends."""
        if not self.owner:
            raise RuntimeError("only the owner sets the result")
        self._turn.result = (value,)

    async def succeeded(self) -> bool:
        """Wait for this hold to end; → whether it left a result (False: failed, cancelled).
        For other holders to wait on this one only, not on whoever takes the key over."""
        await self._turn.settled.wait()
        return self._turn.result is not None


class Claims(Generic[K, V]):
    """Keys with at most one owner each, and the results owners made (until :meth:`forget`)."""

    def __init__(self, *, failures: Literal["raise", "retry"] = "raise") -> None:
        self._failures = failures
        self._kept: dict[K, V] = {}
        self._turns: dict[K, _Turn[V]] = {}

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[Held[V]]:
        """The kept result, the current owner's once it has one, or ownership of ``key``.

        Ownership is taken with no await once the key is free, so a caller can note what else
        is held in the same step. The owner must :meth:`Held.set` a result before the block ends;
        an exception (or a cancellation) leaving the block ends the hold without one.
        """
        while True:
            if key in self._kept:
                yield Held(_kept(self._kept[key]), owner=False)
                return
            turn = self._turns.get(key)
            if turn is None:
                break
            await turn.settled.wait()
            if turn.result is not None:  # also when the key was forgotten meanwhile
                yield Held(turn, owner=False)
                return
            if turn.error is not None:
                raise turn.error
        turn = _Turn[V]()
        self._turns[key] = turn
        try:
            yield Held(turn, owner=True)
            if turn.result is None:
                raise RuntimeError(f"the owner of {key!r} left without a result")
        except Exception as exc:
            turn.result = None
            if self._failures == "raise":
                turn.error = exc
            raise
        except BaseException:
            turn.result = None  # cancelled: a waiter takes over
            raise
        finally:
            if self._turns.get(key) is turn:
                del self._turns[key]
                if turn.result is not None:
                    self._kept[key] = turn.result[0]
            turn.settled.set()

    def put(self, key: K, value: V) -> None:
        """Keep a result made elsewhere; a hold in progress on ``key`` no longer replaces it."""
        self._turns.pop(key, None)
        self._kept[key] = value

    def forget(self, key: K) -> None:
        """Drop the kept result (or the hold in progress): the next caller makes a new one.
        Callers waiting already still get the result of the owner they wait for."""
        self._kept.pop(key, None)
        self._turns.pop(key, None)

    def clear(self) -> None:
        self._kept.clear()
        self._turns.clear()


def _kept(value: V) -> _Turn[V]:
    turn = _Turn[V]()
    turn.result = (value,)
    turn.settled.set()
    return turn
