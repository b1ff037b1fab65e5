"""A real OIDC issuer on loopback for tests: discovery and JWKS over HTTP (aiohttp), RSA keys
that rotate, and tokens signed with PyJWT the way Kubernetes and CI issuers sign theirs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "xregistry"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """Serves ``/.well-known/openid-configuration`` and ``/keys``; counts the JWKS fetches."""

    def __init__(self) -> None:
        self.url = ""
        self.jwks_fetches = 0
        self.discovery: dict[str, Any] = {}  # overrides of the discovery document's fields
        self.jwks_padding = 0  # extra bytes in the JWKS document (the byte cap)
        self.jwks_nesting = 0  # a value nested this deep in the JWKS document (a hostile one)
        self.extra_keys: list[Any] = []  # published beside the signing keys (hostile ones)
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.current = self.rotate()

    def rotate(self) -> str:
        """A new signing key replaces the published ones; returns its kid."""
        kid = uuid.uuid4().hex[:16]
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.current = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": [*self.extra_keys, *keys]}

    def public_pem(self) -> bytes:
        return (
            self.keys[self.current]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def claims(
        self, subject: str = "system:serviceaccount:ci:deployer", **extra: Any
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": subject,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        subject: str = "system:serviceaccount:ci:deployer",
        *,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        kid = kid or self.current
        signer = key or self.keys[kid]
        # Signed as JWS so that claims of any shape can be made (jwt.encode checks some).
        payload = json.dumps(self.claims(subject, **claims)).encode()
        return jwt.PyJWS().encode(payload, signer, "RS256", headers={"kid": kid, "typ": "JWT"})

    def unsigned(
        self, alg: Any = "none", subject: str = "system:serviceaccount:ci:deployer"
    ) -> str:
        """A token with header ``alg`` and no signature (``alg: none`` when not told otherwise)."""
        header = _b64(json.dumps({"alg": alg, "kid": self.current}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(subject)).encode())}."

    def hs256_with_public_key(self, subject: str = "system:serviceaccount:ci:deployer") -> str:
        """The HS/RS confusion: HMAC keyed with the issuer's published RSA public key."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": self.current}).encode())
        payload = _b64(json.dumps(self.claims(subject)).encode())
        mac = hmac.new(self.public_pem(), f"{header}.{payload}".encode(), hashlib.sha256)
        return f"{header}.{payload}.{_b64(mac.digest())}"

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"issuer": self.url, "jwks_uri": f"{self.url}/keys", **self.discovery}
        )

    async def _keys(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        if self.jwks_nesting:
            deep = "[" * self.jwks_nesting + "]" * self.jwks_nesting
            return web.json_response(text=json.dumps(self.jwks())[:-1] + f', "deep": {deep}}}')
        return web.json_response({**self.jwks(), "padding": "x" * self.jwks_padding})


@asynccontextmanager
async def running_issuer() -> AsyncIterator[Issuer]:
    issuer = Issuer()
    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", issuer._discovery)
    app.router.add_get("/keys", issuer._keys)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    issuer.url = f"http://127.0.0.1:{port}"
    try:
        yield issuer
    finally:
        await runner.cleanup()
