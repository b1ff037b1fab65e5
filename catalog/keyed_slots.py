"""Slots shared by all, with a share for each key: one key's holders never take them all.

The gate's live look-ups share theirs by registry host (a slow or hostile registry cannot stall
every other's), catalog evaluations by caller (one caller's many cannot hold every turn).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable


class KeyedSlots:
    """At most ``total`` holders at once, at most ``per_key`` of them for one key. A holder
    takes its key's slot first: waiting for it, it holds none of the shared ones. A key is kept
    only while it is held or waited for, so any number of keys leave nothing behind."""

    def __init__(self, total: int, per_key: int) -> None:
        self._shared = asyncio.Semaphore(total)
        self._per_key = per_key
        # A key's slots and how many hold or wait for them.
        self._keys: dict[Hashable, tuple[asyncio.Semaphore, list[int]]] = {}

    def __len__(self) -> int:
        """Keys held or waited for."""
        return len(self._keys)

    @contextlib.asynccontextmanager
    async def held(self, key: Hashable | None) -> AsyncIterator[None]:
        """A slot for ``key``, or one of the shared slots alone for ``None``."""
        if key is None:
            async with self._shared:
                yield
            return
        entry = self._keys.get(key)
        if entry is None:
            entry = self._keys[key] = asyncio.Semaphore(self._per_key), [0]
        entry[1][0] += 1
        try:
            async with entry[0], self._shared:
                yield
        finally:
            entry[1][0] -= 1
            if not entry[1][0] and self._keys.get(key) is entry:
                del self._keys[key]
