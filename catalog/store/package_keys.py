"""Package keys: a package's purl base (or its name) and its version packed into one 64-bit
integer, what the package look-up indexes hold instead of two strings.

Each package row adds an entry at a random place in two indexes; a crawl's transaction dirties
most of their pages, and once the indexes outgrow the page cache every entry costs a page read
and a write. An integer entry is about half a pair of strings'. The key's top 40 bits are the
first bits of the BLAKE2b hash of the purl base (or name), its low 24 bits those of the
version's: a look-up with a version is one key, one without a version the range of the keys
sharing the top bits. Different strings may share a key: every look-up compares the strings
too. Stable across processes, machines and versions (not Python's ``hash``): stored keys are
compared with keys computed later. Only hashlib here: a crawl's SBOM worker processes import it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

_VERSION_BITS = 24
_VERSION_MASK = (1 << _VERSION_BITS) - 1
_HEAD_MASK = ((1 << 64) - 1) ^ _VERSION_MASK
_SIGN = 1 << 63


# Cached: SBOMs share most names and versions. Strings are at most 512 characters (the columns),
# so the cache holds at most ~8 MiB whatever a hostile SBOM holds.
@lru_cache(maxsize=4096)
def text_hash(text: str) -> int:
    """64 bits of the BLAKE2b hash of the text's UTF-8, unsigned. A lone surrogate (a command
    line's undecodable byte) is hashed as it is encoded, not refused: the store never holds one
    (the decoders refuse them), so a look-up with one finds nothing, as before."""
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    )


def _signed(value: int) -> int:
    """As a signed 64-bit integer, what both databases' BIGINT holds."""
    return value - (1 << 64) if value & _SIGN else value


def package_key(head: str | None, version: str | None) -> int | None:
    """The key of a package's purl base (or name) and version; ``None`` without a head."""
    if head is None:
        return None
    low = 0 if version is None else text_hash(version) & _VERSION_MASK
    return _signed(text_hash(head) & _HEAD_MASK | low)


def key_range(head: str) -> tuple[int, int]:
    """The lowest and highest key of a head, whatever the version (none included). The range
    keeps its order as signed integers: its keys share the sign bit."""
    high = text_hash(head) & _HEAD_MASK
    return _signed(high), _signed(high | _VERSION_MASK)
