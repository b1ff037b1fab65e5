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

_VERSION_BITS = 24
_VERSION_MASK = (1 << _VERSION_BITS) - 1
_HEAD_MASK = ~_VERSION_MASK  # on signed integers: the sign and the 39 bits after it


def text_hash(text: str) -> int:
    """64 bits of the BLAKE2b hash of the text's UTF-8 as a signed integer: what both databases'
    BIGINT holds, and masking keeps a key in that range. A lone surrogate (a command line's
    undecodable byte) is hashed as it would be encoded, not refused."""
    found = _hashes.get(text)
    if found is None:
        found = int.from_bytes(
            hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
            signed=True,
        )
        if len(text) <= _CACHED:
            if len(_hashes) >= _CACHE_SIZE:
                _hashes.clear()  # a bound, not a policy: the common strings come back at once
            _hashes[text] = found
    return found


# SBOMs share most names and versions: a hash costs ~1 us, a hit a dictionary look-up (row_keys
# looks there first, without a call). Short strings only, so that a hostile SBOM's long ones
# cannot make it hold more than ~6 MiB.
_CACHED, _CACHE_SIZE = 64, 16384
_hashes: dict[str, int] = {}


def package_key(head: str | None, version: str | None) -> int | None:
    """The key of a package's purl base (or name) and version; ``None`` without a head."""
    return None if head is None else text_hash(head) & _HEAD_MASK | _version_bits(version)


def row_keys(purl_base: str | None, name: str, version: str | None) -> tuple[int | None, int]:
    """A package row's two keys (:func:`package_key` of its purl base and of its name), the
    version hashed once. Per package row of every SBOM: the cache read in line."""
    get = _hashes.get
    low = 0 if version is None else (get(version) or text_hash(version)) & _VERSION_MASK
    name_key = (get(name) or text_hash(name)) & _HEAD_MASK | low
    if purl_base is None:
        return None, name_key
    return (get(purl_base) or text_hash(purl_base)) & _HEAD_MASK | low, name_key


def _version_bits(version: str | None) -> int:
    return 0 if version is None else text_hash(version) & _VERSION_MASK


def key_range(head: str) -> tuple[int, int]:
    """The lowest and highest key of a head, whatever the version (none included)."""
    high = text_hash(head) & _HEAD_MASK
    return high, high | _VERSION_MASK
