"""Who is calling: a bearer token (static, or an OIDC JWT), else a verified client certificate.

A bearer token, when sent, decides: a bad one is refused even over mTLS, so a caller never ends
up as someone it did not claim to be. Verified JWTs are kept until they expire (keyed by their
hash), so a warm call costs a SHA-256 and a dictionary lookup, no signature check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from catalog.api.access.certificates import certificate_principal
from catalog.api.access.oidc import InvalidToken, OidcVerifiers, Verified
from catalog.api.access.tokens import StaticTokens, token_hash
from catalog.app.auth_config import AuthSettings
from catalog.principals import Principal

MAX_CACHED_TOKENS = 10_000


class Unauthenticated(Exception):
    """Missing or refused credentials; the message is safe to send back (no token in it)."""


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self._tokens = StaticTokens(settings.tokens)
        self.oidc = OidcVerifiers(settings.oidc)
        self._certificates = settings.certificates
        self._verified: dict[bytes, Verified] = {}

    async def principal(
        self,
        metadata: Iterable[tuple[str, str | bytes]],
        auth_context: Callable[[], Mapping[str, Iterable[bytes]]],
    ) -> Principal:
        """The caller, from its call's metadata and (read only when needed) TLS auth context."""
        bearer = _bearer(metadata)
        if bearer is not None:
            return await self._from_token(bearer)
        if self._certificates:
            principal = certificate_principal(auth_context())
            if principal is not None:
                return principal
        raise Unauthenticated("credentials required: a bearer token or a client certificate")

    async def _from_token(self, token: str) -> Principal:
        digest = token_hash(token)
        static = self._tokens.principal(digest)
        if static is not None:
            return static
        cached = self._verified.get(digest)
        now = time.time()
        if cached is not None and cached.expires > now:
            return cached.principal
        if token.count(".") != 2:
            raise Unauthenticated("invalid bearer token")
        try:
            verified = await self.oidc.verify(token)
        except InvalidToken as exc:
            raise Unauthenticated(f"invalid bearer token: {exc}") from None
        self._remember(digest, verified, now)
        return verified.principal

    def _remember(self, digest: bytes, verified: Verified, now: float) -> None:
        if len(self._verified) >= MAX_CACHED_TOKENS:
            self._verified = {k: v for k, v in self._verified.items() if v.expires > now}
            while len(self._verified) >= MAX_CACHED_TOKENS:  # all live: drop the oldest
                del self._verified[next(iter(self._verified))]
        self._verified[digest] = verified


def _bearer(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    values = [value for key, value in metadata if key == "authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise Unauthenticated("more than one authorization header")
    value = values[0]
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    scheme, _, token = text.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the authorization header must be 'Bearer TOKEN'")
    return token
