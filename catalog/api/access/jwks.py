"""An OIDC issuer's signing keys: fetched (discovery or a configured JWKS URL) with a byte cap and
a deadline, kept, refreshed when old, and re-fetched for an unknown key id at most once per
cooldown so that tokens with made-up ``kid`` values cannot make the server hammer the issuer;
nor, while none could be fetched yet, tried again within the cooldown of a failed fetch (each
try may take the whole deadline, and every token of the issuer waits behind it)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

import aiohttp
import jwt

from catalog.app.auth_config import OidcIssuer, https_url
from catalog.oci import boundedjson

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1 << 20
FETCH_SECONDS = 10.0
MAX_AGE_SECONDS = 3600.0  # keys are re-read hourly even when every kid is known
# Algorithms a JWKS key may verify: asymmetric only, so a public key is never an HMAC secret.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched (and none are known): why, for the server's log
    (it names the issuer's hosts; a caller is only told that the keys are unavailable)."""


class Jwks:
    def __init__(self, issuer: OidcIssuer) -> None:
        self.issuer = issuer
        self.fetches = 0  # how often the keys were fetched (tests watch the cooldown with it)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._failed: tuple[float, str] | None = None  # when a fetch last failed without keys, why
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key ``kid`` names; None when the issuer does not have it."""
        now = time.monotonic()
        if self._fetched_at is None or now - self._fetched_at >= MAX_AGE_SECONDS:
            await self._refresh(self._fetched_at)
        elif kid not in self._keys and now - self._fetched_at >= self.issuer.jwks_cooldown:
            await self._refresh(self._fetched_at)  # a rotation: the issuer has a new key
        return self._keys.get(kid)

    async def _refresh(self, seen: float | None) -> None:
        async with self._lock:
            if self._fetched_at != seen:
                return  # another call refreshed while this one waited
            if self._failed is not None:
                failed_at, why = self._failed
                if time.monotonic() - failed_at < self.issuer.jwks_cooldown:
                    raise KeysUnavailable(why)  # tried within the cooldown: not again yet
            try:
                keys = await self._fetch()
            except (aiohttp.ClientError, OSError, ValueError, jwt.PyJWTError) as exc:
                if not self._keys:
                    why = f"{self.issuer.issuer}: {exc}"
                    self._failed = (time.monotonic(), why)
                    log.warning("cannot fetch the keys of %s", why)
                    raise KeysUnavailable(why) from None
                # Keep the keys we have; an outage of the issuer must not lock everyone out.
                log.warning("keeping the old keys of %s: %s", self.issuer.issuer, exc)
                keys = self._keys
            self._keys = keys
            self._fetched_at = time.monotonic()
            self._failed = None

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        self.fetches += 1
        ssl_context = (
            ssl.create_default_context(cafile=str(self.issuer.ca_file))
            if self.issuer.ca_file
            else True
        )
        timeout = aiohttp.ClientTimeout(total=FETCH_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            url = self.issuer.jwks_url
            if url is None:
                discovery = await _get_json(
                    session,
                    self.issuer.issuer.rstrip("/") + "/.well-known/openid-configuration",
                    ssl_context,
                )
                if discovery.get("issuer") != self.issuer.issuer:
                    raise ValueError("the discovery document names another issuer")
                url = discovery.get("jwks_uri")
                if not isinstance(url, str):
                    raise ValueError("the discovery document has no jwks_uri")
                https_url(url)
            document = await _get_json(session, url, ssl_context)
        return _usable_keys(document)


async def _get_json(
    session: aiohttp.ClientSession, url: str, ssl_context: ssl.SSLContext | bool
) -> dict[str, Any]:
    async with session.get(url, ssl=ssl_context, allow_redirects=False) as response:
        if response.status != 200:
            raise ValueError(f"{url} answered HTTP {response.status}")
        body = bytearray()
        async for chunk in response.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
    # Bounded (json.loads raises RecursionError on deep nesting); JSONRefused is a ValueError.
    document = boundedjson.loads(bytes(body), max_depth=64, max_values=100_000)
    if not isinstance(document, dict):
        raise ValueError(f"{url}: not a JSON object")
    return document


def _usable_keys(document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("the JWKS has no keys")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue  # encryption keys and shared secrets never verify a token
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, TypeError):
            # A key type this PyJWT cannot use, or a malformed entry (an ``alg`` that is a list
            # or an object: a TypeError, not PyJWT's own error): the others still work.
            continue
        if key.algorithm_name in ASYMMETRIC:
            keys[entry["kid"]] = key
    return keys
