"""The HTTP listeners' access control, on a real HTTPS listener: static tokens, OIDC tokens
from a real issuer on loopback, verified client certificates, the route table (deny by
default), the handler running as the caller, and no token echoed back."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from catalog.api.access import Access, Permission, access_middleware
from catalog.api.http import HttpListener
from catalog.app.auth_config import AuthSettings, Binding, OidcIssuer, Role, StaticToken
from catalog.app.tls_config import TlsSettings
from catalog.principals import current
from tests.api.access.conftest import sha256
from tests.api.access.issuer import AUDIENCE, Issuer
from tests.api.peer import Pki, make_pki
from tests.harness.pki import CertKey, make_client_cert

ROUTES = {
    "GET /who": Permission.READ,
    "POST /work/{name}": Permission.OPERATE,
    "GET /healthz": Permission.OPEN,
}


async def who(_: web.Request) -> web.Response:
    return web.Response(text=str(current()))


def application(settings: AuthSettings | None) -> web.Application:
    app = web.Application(middlewares=[access_middleware(Access(settings), ROUTES)])
    app.router.add_get("/who", who)
    app.router.add_post("/work/{name}", who)
    app.router.add_get("/healthz", who)
    app.router.add_get("/unlisted", who)
    return app


class Client:
    def __init__(self, port: int, pki: Pki) -> None:
        self.port = port
        self.pki = pki

    async def call(
        self,
        path: str,
        *,
        method: str = "GET",
        token: str | None = None,
        cert: CertKey | None = None,
    ) -> tuple[int, str]:
        context = ssl.create_default_context(cadata=self.pki.ca.cert_pem.decode())
        if cert is not None:
            context.load_cert_chain(cert.cert_file, cert.key_file)
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        connector = aiohttp.TCPConnector(ssl=context)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(
                method, f"https://127.0.0.1:{self.port}{path}", headers=headers
            ) as answer,
        ):
            return answer.status, await answer.text()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


async def serving(
    settings: AuthSettings | None, tls: TlsSettings, pki: Pki
) -> AsyncIterator[Client]:
    listener = HttpListener("test", "127.0.0.1:0", application(settings), tls=tls)
    await listener.start()
    try:
        yield Client(listener.port, pki)
    finally:
        await listener.stop()


def settings(issuer: Issuer, *, certificates: bool = False) -> AuthSettings:
    return AuthSettings(
        tokens=[
            StaticToken(name="ci", sha256=sha256("s3cret-ci")),
            StaticToken(name="ops", sha256=sha256("s3cret-ops")),
        ],
        oidc=[OidcIssuer(issuer=issuer.url, audience=AUDIENCE)],
        certificates=certificates,
        bindings=[
            Binding(
                role=Role.VIEWER, principals=["token:ci", "oidc:system:serviceaccount:ci:deployer"]
            ),
            Binding(role=Role.OPERATOR, principals=["token:ops", "cert:ci-runner"]),
        ],
    )


async def test_tokens_decide_who_calls_and_what_they_may_do(pki: Pki, issuer: Issuer) -> None:
    async for client in serving(settings(issuer), pki.settings(), pki):
        assert await client.call("/who", token="s3cret-ci") == (200, "token:ci")
        oidc = issuer.token()
        assert await client.call("/who", token=oidc) == (
            200,
            "oidc:system:serviceaccount:ci:deployer",
        )
        # A viewer may not start work; an operator may.
        status, text = await client.call("/work/x", method="POST", token="s3cret-ci")
        assert status == 403
        assert "token:ci may not call POST /work/{name}" in text
        assert await client.call("/work/x", method="POST", token="s3cret-ops") == (200, "token:ops")
        # No or a wrong token: 401, and the token is not echoed.
        assert (await client.call("/who"))[0] == 401
        status, text = await client.call("/who", token="guessed-token")
        assert status == 401
        assert "guessed-token" not in text
        # Open routes need nothing; a route without an entry is refused to everyone.
        assert await client.call("/healthz") == (200, "anonymous:anonymous")
        status, text = await client.call("/unlisted", token="s3cret-ops")
        assert status == 403
        assert "not open to anyone" in text
        assert (await client.call("/missing", token="s3cret-ops"))[0] == 404


async def test_a_verified_client_certificate_names_the_caller(pki: Pki, issuer: Issuer) -> None:
    async for client in serving(settings(issuer, certificates=True), pki.settings(mtls=True), pki):
        assert await client.call("/work/x", method="POST", cert=pki.client) == (
            200,
            "cert:ci-runner",
        )
        stranger = make_client_cert(pki.directory / "stranger", pki.other_ca, "ci-runner")
        with pytest.raises(aiohttp.ClientError):
            await client.call("/who", cert=stranger)  # the TLS layer refuses it
        with pytest.raises(aiohttp.ClientError):
            await client.call("/who")  # mTLS: no certificate, no connection


async def test_without_an_auth_section_callers_are_anonymous(pki: Pki) -> None:
    async for client in serving(None, pki.settings(), pki):
        assert await client.call("/who") == (200, "anonymous:anonymous")
        assert (await client.call("/unlisted"))[0] == 403  # deny by default still holds
