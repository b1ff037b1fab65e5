"""One access control per process: a token verified on the gRPC port is not fetched for nor
verified again on an HTTP listener's (a real OIDC issuer on loopback counts the key fetches)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc.aio
import pytest

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.app.auth_config import AuthSettings, Binding, OidcIssuer, Role
from catalog.app.config import ServeConfig
from catalog.app.ops_config import MetricsSettings
from catalog.daemon import Server
from tests.api.access.issuer import AUDIENCE, Issuer, running_issuer
from tests.ops.scraping import get

SUBJECT = "system:serviceaccount:ci:deployer"


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    async with running_issuer() as running:
        yield running


async def test_a_token_is_verified_once_for_every_listener(tmp_path: Path, issuer: Issuer) -> None:
    config = ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        auth=AuthSettings(
            oidc=[OidcIssuer(issuer=issuer.url, audience=AUDIENCE)],
            bindings=[Binding(role=Role.VIEWER, principals=[f"oidc:{SUBJECT}"])],
        ),
        metrics=MetricsSettings(listen="127.0.0.1:0"),
    )
    service = Server(config)
    await service.start()
    try:
        assert service.metrics.listener is not None
        metrics_port = service.metrics.listener.port
        token = issuer.token(SUBJECT)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            await stub.ListRegistries(
                catalog_pb2.ListRegistriesRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
            )
        assert issuer.jwks_fetches == 1
        status, _ = await get(metrics_port, token)
        assert status == 200
        status, _ = await get(metrics_port, issuer.token(SUBJECT, jti="another"))
        assert status == 200
        # The metrics listener used the keys the gRPC call fetched and the token it verified.
        assert issuer.jwks_fetches == 1
        authenticator = service.access.authenticator
        assert authenticator is not None
        assert authenticator.oidc.signature_checks == 2
        status, _ = await get(metrics_port, "a.forged.token")
        assert status == 401
    finally:
        await service.stop()
