"""Digests: parsing, validation, and hashing while streaming."""

from __future__ import annotations

import asyncio
import hashlib
import re

from catalog.oci.errors import DigestMismatch, InvalidDigest, SizeMismatch
from catalog.values import Value

# Work on more bytes than this (decoding, hashing) runs on a worker thread: a few ms of C on
# the event loop would hold up every call the process answers; below it, the hop costs more.
OFF_LOOP = 256 * 1024

_HEX_LEN = {"sha256": 64, "sha512": 128}
_setattr = object.__setattr__  # past Value's refusal: a digest is set once, in __init__
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_LOWER_HEX = re.compile(r"[0-9a-f]+")


class Digest(Value):
    """A validated ``algorithm:hex`` content digest (sha256 or sha512); immutable, compared and
    hashed by value (:class:`~catalog.values.Value`)."""

    __slots__ = ("_text", "algorithm", "hex")
    _FIELDS = ("algorithm", "hex")
    algorithm: str
    hex: str
    _text: str

    # A crawl makes, compares and prints a few dozen digests an image: set, compared and
    # printed here directly, not through the generic record's loops (same semantics).
    def __init__(self, algorithm: str, hex: str) -> None:
        _setattr(self, "algorithm", algorithm)
        _setattr(self, "hex", hex)
        _setattr(self, "_text", f"{algorithm}:{hex}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Digest:
            return NotImplemented
        return self.hex == other.hex and self.algorithm == other.algorithm

    def __hash__(self) -> int:
        return hash((self.algorithm, self.hex))

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, _, hexpart = text.partition(":")
        if len(hexpart) == _HEX_LEN.get(algorithm) and _LOWER_HEX.fullmatch(hexpart):
            return cls(algorithm, hexpart)  # the common case, without the grammar's match
        m = _DIGEST_RE.match(text)
        if not m:
            raise InvalidDigest(f"invalid digest {text!r}: expected ALGORITHM:HEX")
        algorithm, hexpart = m.group(1), m.group(2)
        if algorithm not in _HEX_LEN:
            raise InvalidDigest(
                f"unsupported digest algorithm {algorithm!r} in {text!r} (sha256, sha512)"
            )
        if len(hexpart) != _HEX_LEN[algorithm] or not _LOWER_HEX.fullmatch(hexpart):
            raise InvalidDigest(
                f"invalid {algorithm} digest {text!r}: "
                f"expected {_HEX_LEN[algorithm]} lower-case hex characters"
            )
        return cls(algorithm, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return self._text

    def fallback_tag(self) -> str:
        """The referrers fallback tag, ``<alg>-<hex>`` (distribution-spec 1.1)."""
        return f"{self.algorithm[:32]}-{self.hex[:64]}"


def as_digest(text: str) -> Digest | None:
    """``text`` as a :class:`Digest`, or None when it is not one (a tag, say)."""
    if ":" not in text:  # a tag, asked about per request: without an exception's cost
        return None
    try:
        return Digest.parse(text)
    except InvalidDigest:
        return None


def is_digest(text: str) -> bool:
    return as_digest(text) is not None


class Verifier:
    """Hashes bytes as they stream past and checks digest and size at the end.

    Nothing downstream should commit data until :meth:`verify` returns.
    """

    def __init__(self, expected: Digest | str, size: int | None = None, what: str = "blob") -> None:
        self.expected = expected if isinstance(expected, Digest) else Digest.parse(expected)
        self._hash = hashlib.new(self.expected.algorithm)
        self.size = size
        self.seen = 0
        self.what = what

    def update(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        if self.size is not None and self.seen > self.size:
            raise SizeMismatch(self.size, self.seen, self.what)
        self._hash.update(chunk)

    def verify(self) -> None:
        if self.size is not None and self.seen != self.size:
            raise SizeMismatch(self.size, self.seen, self.what)
        actual = f"{self.expected.algorithm}:{self._hash.hexdigest()}"
        if actual != str(self.expected):
            raise DigestMismatch(str(self.expected), actual, self.what)


class StreamVerifier:
    """A :class:`Verifier` whose hashing of large chunks runs in a worker thread, overlapping
    the next read.

    hashlib releases the GIL on large buffers, so a download hashes at the speed of the network
    rather than of one core. A chunk of at most :data:`OFF_LOOP` bytes (a manifest's documents,
    a signature) is hashed at once: the hop would cost more. Updates stay in order: one is in
    flight at a time.
    """

    def __init__(self, expected: Digest | str, size: int | None = None, what: str = "blob") -> None:
        self._verifier = Verifier(expected, size, what)
        self._pending: asyncio.Future[None] | None = None
        self.received = 0

    async def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self._pending is not None:
            await self._pending
            self._pending = None
        if len(chunk) <= OFF_LOOP:
            self._verifier.update(chunk)
            return
        self._pending = asyncio.get_running_loop().run_in_executor(
            None, self._verifier.update, chunk
        )

    async def verify(self) -> None:
        if self._pending is not None:
            await self._pending
            self._pending = None
        self._verifier.verify()


def verify_bytes(data: bytes, digest: Digest, size: int | None = None, what: str = "blob") -> None:
    """Check in-memory content against its digest (and size when known)."""
    verifier = Verifier(digest, size, what)
    verifier.update(data)
    verifier.verify()
