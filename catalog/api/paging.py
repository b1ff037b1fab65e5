"""Page sizes and opaque page tokens for the List and Search methods (AIP-158).

A token carries a :class:`Cursor` (an offset, or a keyset: the sort key of the last item
returned) and a fingerprint of the request it was issued for: the request message with
``page_size`` and ``page_token`` cleared, serialized deterministically and hashed together with
the message's full name. A token used with any other filter, parent or method is refused with
``InvalidArgument`` (→ INVALID_ARGUMENT), as is a token that was altered or issued under another
key: tokens are HMAC-signed, so clients cannot build or edit them and the encoding can change.

Layout: base64url (unpadded) of ``version (1 byte) || HMAC-SHA256(key)[:16] || JSON payload``.

Every replica of a server must use the same key (configure it), or a token issued by one replica
is refused by another; a refused token only makes the client start listing again.

Page sizes are clamped once (:func:`page_size`), by the app's reads, which the CLI calls too: a
servicer passes the request's size on and clamps only a list whose maximum is its own (index
errors, rules, policies).

Lists page by keyset: the query layer orders by a sort key and the row id as tie-breaker, and
hands back the key of a page's last row (``Page.next_after``) for the token to carry.

Lists whose items a registry's content sizes (``SearchArtifactsByPackage``, ``ListReferrers``)
are also bounded by bytes: a page ends before the item that would take it past
:data:`PAGE_BYTES`, well under the server's 4 MiB send limit (an item too large alone, like an
artifact of ``GetArtifact``, is cut by :func:`catalog.api.fitting.cut_to_fit`'s rule).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from catalog.errors import InvalidArgument
from catalog.store.queries import DEFAULT_PAGE_SIZE as DEFAULT_PAGE_SIZE
from catalog.store.queries import MAX_PAGE_SIZE as MAX_PAGE_SIZE
from catalog.store.queries import Budget
from catalog.store.queries import page_size as page_size

# What the items of a byte-bounded answer may take: a page token (4 KiB at most) and the
# framing fit in the rest of the server's 4 MiB (catalog.api.server.MAX_SEND).
PAGE_BYTES = 3 * 1024 * 1024

_VERSION = 1
_MAC_LEN = 16
_FINGERPRINT_LEN = 16
_PAGING_FIELDS = ("page_size", "page_token")
_MAX_TOKEN = 4096
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")

M = TypeVar("M", bound=Message)

KeyPart = str | int | bool | None
"""One component of a keyset cursor: JSON scalars only (floats would not round-trip exactly)."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: after ``offset`` items, or after the item whose sort key is
    ``after`` (keyset paging; prefer it, it is stable while rows are inserted)."""

    offset: int = 0
    after: tuple[KeyPart, ...] = ()


def varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def encoded_size(message: Message) -> int:
    """What ``message`` adds to a repeated field of the answer: its bytes, tag and length."""
    size = message.ByteSize()
    return size + 2 + varint_size(size)


class Weigher(Generic[M]):
    """A page budget of ``limit`` bytes, each item weighed as ``convert`` encodes it; the
    messages it converted to weigh them are kept, so that the answer reuses them (up to 1,000
    items a page: converting each twice was half the work)."""

    def __init__(self, convert: Callable[[Any], M], limit: int = PAGE_BYTES) -> None:
        self._convert = convert
        self._weighed: list[tuple[Any, M]] = []
        self.budget = Budget(limit, self._weigh)

    def _weigh(self, item: Any) -> int:
        message = self._convert(item)
        self._weighed.append((item, message))
        return encoded_size(message)

    def messages(self, items: Sequence[Any]) -> list[M]:
        """The messages of a page's ``items``: those weighed (a page is weighed in order, its
        items first), converted again only for an item that was not."""
        weighed = self._weighed
        return [
            weighed[at][1] if at < len(weighed) and weighed[at][0] is item else self._convert(item)
            for at, item in enumerate(items)
        ]


def request_fingerprint(request: Message) -> bytes:
    """A hash of everything in ``request`` but its paging fields, and of its message type."""
    copy = type(request)()
    copy.CopyFrom(request)
    fields = copy.DESCRIPTOR.fields_by_name
    for name in _PAGING_FIELDS:
        if name in fields:
            copy.ClearField(name)
    digest = hashlib.sha256(copy.DESCRIPTOR.full_name.encode() + b"\0")
    digest.update(copy.SerializeToString(deterministic=True))
    return digest.digest()[:_FINGERPRINT_LEN]


def _b64decode(text: str) -> bytes:
    # Strict: the base64 module would skip characters outside the alphabet.
    if len(text) > _MAX_TOKEN or not _TOKEN_ALPHABET.fullmatch(text):
        raise InvalidArgument("page_token is not a valid page token")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument("page_token is not a valid page token") from exc


def _is_key_part(value: Any) -> bool:
    return value is None or isinstance(value, str | int | bool)


class PageTokens:
    """Encodes and checks page tokens with one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a page token key needs at least 16 bytes")
        self._key = key

    @classmethod
    def random(cls) -> PageTokens:
        """A codec with a fresh key: for one process (tests, the embedded single-node server)."""
        return cls(secrets.token_bytes(32))

    def _mac(self, signed: bytes) -> bytes:
        return hmac.new(self._key, signed, hashlib.sha256).digest()[:_MAC_LEN]

    def encode(self, request: Message, cursor: Cursor) -> str:
        """The token for the page after ``cursor`` of ``request``."""
        if cursor.offset < 0:
            raise ValueError("a cursor offset cannot be negative")
        if not all(_is_key_part(part) for part in cursor.after):
            raise TypeError(f"keyset parts must be str, int, bool or None: {cursor.after!r}")
        payload: dict[str, Any] = {"f": request_fingerprint(request).hex()}
        if cursor.offset:
            payload["o"] = cursor.offset
        if cursor.after:
            payload["k"] = list(cursor.after)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()
        signed = bytes([_VERSION]) + body
        token = signed[:1] + self._mac(signed) + body
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def after(self, request: Message, *kinds: type[int] | type[str]) -> tuple[Any, ...] | None:
        """The keyset a page token carries (None on the first page), checked part by part
        against ``kinds``: ``(str, int)`` for a name and its id tie-breaker, ``(int,)`` for an
        id."""
        cursor = self.decode(request)
        if not cursor.after:
            return None
        if len(cursor.after) != len(kinds) or not all(
            isinstance(part, kind) and not isinstance(part, bool)
            for part, kind in zip(cursor.after, kinds, strict=True)
        ):
            raise InvalidArgument("page_token is not a valid page token")
        return cursor.after

    def next(self, request: Message, after: tuple[KeyPart, ...] | None) -> str:
        """The token for the page after the key ``after``; empty at the end (None)."""
        return "" if after is None else self.encode(request, Cursor(after=after))

    def decode(self, request: Message) -> Cursor:
        """The cursor in ``request.page_token`` (``Cursor()`` when it is empty).

        Raises InvalidArgument when the token is malformed, altered, signed with another key,
        or was issued for a request with other fields than ``request`` (``page_size`` aside).
        """
        token: str = getattr(request, "page_token", "")
        if not token:
            return Cursor()
        raw = _b64decode(token)
        if len(raw) <= 1 + _MAC_LEN or raw[0] != _VERSION:
            raise InvalidArgument("page_token is not a valid page token")
        mac, body = raw[1 : 1 + _MAC_LEN], raw[1 + _MAC_LEN :]
        if not hmac.compare_digest(mac, self._mac(raw[:1] + body)):
            raise InvalidArgument(
                "page_token is not a valid page token (altered, or issued with another key)"
            )
        try:
            payload = json.loads(body)
            fingerprint = bytes.fromhex(payload["f"])
            offset = payload.get("o", 0)
            after = tuple(payload.get("k", ()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidArgument("page_token is not a valid page token") from exc
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise InvalidArgument("page_token is not a valid page token")
        if not all(_is_key_part(part) for part in after):
            raise InvalidArgument("page_token is not a valid page token")
        if not hmac.compare_digest(fingerprint, request_fingerprint(request)):
            raise InvalidArgument(
                "page_token was issued for a different request: keep every field but "
                "page_size as it was, or start again without a page_token"
            )
        return Cursor(offset=offset, after=after)
