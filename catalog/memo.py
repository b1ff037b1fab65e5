"""A bounded memo keyed by an object's identity, for what is derived from immutable objects that
recur as the very same object (the gate answers warm checks with the same cached decision again
and again) and whose hash would cost more than the work saved (a decision's walks all its
evidence)."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """``value`` kept per ``key`` object (not per equal value). An entry holds its key, so the
    key's id cannot be another object's while the entry lives; past ``most`` entries the memo
    starts again empty. Safe across threads as a dict is: a race costs a recomputation."""

    def __init__(self, most: int = 10_000) -> None:
        self._most = most
        self._entries: dict[int, tuple[K, V]] = {}

    def get(self, key: K) -> V | None:
        kept = self._entries.get(id(key))
        return kept[1] if kept is not None and kept[0] is key else None

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` for ``key``; returns it."""
        if len(self._entries) >= self._most:
            self._entries.clear()
        self._entries[id(key)] = (key, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)
