"""A TLS server that says who called it, with certificates made for the test: the CA, the
server's certificate, a client certificate, and a CA nobody trusts at first."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import grpc.aio

from catalog.api.server import ApiServer, build_server, catalog_service
from catalog.api.tls import server_credentials
from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.app.tls_config import TlsSettings
from tests.harness.pki import CertKey, make_ca, make_client_cert, make_server_cert

Context = grpc.aio.ServicerContext[Any, Any]


class Peer(catalog_pb2_grpc.CatalogServiceServicer):
    """Answers GetRegistry with what the server knows of the caller: the client certificate's
    common name (as the access interceptor will read it) in ``host`` and the authorization
    header in ``credentials_ref``; remembers every header it was sent."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []

    async def GetRegistry(
        self, request: catalog_pb2.GetRegistryRequest, context: Context
    ) -> catalog_pb2.GetRegistryResponse:
        names = context.auth_context().get("x509_common_name", [])
        authorization = str(dict(context.invocation_metadata() or ()).get("authorization", ""))
        self.authorizations.append(authorization)
        return catalog_pb2.GetRegistryResponse(
            registry=catalog_pb2.Registry(
                name=request.name, host=b",".join(names).decode(), credentials_ref=authorization
            )
        )


def peer() -> Peer:
    # The stubs declare every method abstract; the others answer UNIMPLEMENTED.
    servicer: type[Any] = Peer
    return cast(Peer, servicer())


@dataclass
class Pki:
    directory: Path
    ca: CertKey
    server: CertKey
    client: CertKey
    other_ca: CertKey

    def settings(self, *, mtls: bool = False) -> TlsSettings:
        return TlsSettings(
            cert_file=self.server.cert_file,
            key_file=self.server.key_file,
            client_ca_file=self.ca.cert_file if mtls else None,
            require_client_cert=mtls,
        )


def make_pki(directory: Path) -> Pki:
    ca = make_ca(directory / "ca")
    return Pki(
        directory,
        ca,
        make_server_cert(directory / "live", ca),
        make_client_cert(directory / "client", ca, "ci-runner"),
        make_ca(directory / "other", "another CA"),
    )


@contextlib.asynccontextmanager
async def serving(
    servicer: Peer, settings: TlsSettings | None, address: str = "127.0.0.1:0"
) -> AsyncIterator[ApiServer]:
    """``servicer`` on ``address``: TLS with ``settings``, plain text with None."""
    server = build_server(
        address, [catalog_service(servicer)], credentials=server_credentials(settings)
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=None)


async def get_registry(channel: grpc.aio.Channel) -> catalog_pb2.Registry:
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    answer = await stub.GetRegistry(catalog_pb2.GetRegistryRequest(name="registries/x"), timeout=5)
    return answer.registry
