"""Bounded memos: one keyed by an object's identity, for what is derived from immutable objects
that recur as the very same object (the gate answers warm checks with the same cached decision
again and again) and whose hash would cost more than the work saved (a decision's walks all its
evidence); one for what is derived from a document's text, which keeps only short keys."""

from __future__ import annotations

from collections.abc import Callable
from functools import _lru_cache_wrapper, lru_cache
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
S = TypeVar("S", str, tuple[str, ...])  # a document's text: hashable, with a length


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


def short_key_cache(
    function: Callable[[S], V], *, most: int, longest: int, size: Callable[[S], int] = len
) -> tuple[Callable[[S], V], _lru_cache_wrapper[V]]:
    """``function`` of a document's text, with its results kept (least recently used, ``most``
    of them) for keys of at most ``longest`` (characters by ``size``), and the cache itself:
    documents repeat their short strings (a purl, a set of licence ids), and a hostile one's
    long strings are worked out each time, not kept (65,536 entries of 64 KiB each would be
    gigabytes). A closure, not an object's ``__call__``: it runs several times a package of
    every SBOM, where the call through an object cost ~1,500 instructions more."""
    cached = lru_cache(maxsize=most)(function)

    def call(key: S) -> V:
        return cached(key) if size(key) <= longest else function(key)

    return call, cached
