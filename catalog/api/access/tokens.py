"""Static API tokens: the config holds SHA-256 hashes only; a presented token is hashed and
compared with every configured hash in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from catalog.app.auth_config import StaticToken
from catalog.principals import Principal, PrincipalKind


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class StaticTokens:
    def __init__(self, tokens: Sequence[StaticToken]) -> None:
        self._hashes = [
            (bytes.fromhex(t.sha256), Principal(PrincipalKind.TOKEN, t.name)) for t in tokens
        ]

    def principal(self, digest: bytes) -> Principal | None:
        """The token whose hash is ``digest``; every entry is compared, match or not, so the
        time taken does not say which (or whether one) matched."""
        found = None
        for expected, principal in self._hashes:
            if hmac.compare_digest(expected, digest):
                found = principal
        return found
