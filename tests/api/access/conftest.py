"""A real server with the access interceptor, a servicer that reports who it runs as, and a real
OIDC issuer on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from catalog.api.access import Access, AccessInterceptor
from catalog.api.server import ApiServer, build_server, catalog_service
from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.app.auth_config import AuthSettings
from catalog.principals import current
from tests.api.access.issuer import Issuer, running_issuer


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


class WhoAmI(catalog_pb2_grpc.CatalogServiceServicer):
    """Answers with the principal the call runs as: GetRegistry (unary, READ) in the registry's
    name; IndexRegistry (streaming, OPERATE) records it before and between its responses."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def GetRegistry(
        self, request: catalog_pb2.GetRegistryRequest, context: Any
    ) -> catalog_pb2.GetRegistryResponse:
        await asyncio.sleep(0)
        return catalog_pb2.GetRegistryResponse(registry=catalog_pb2.Registry(name=str(current())))

    async def IndexRegistry(
        self, request: catalog_pb2.IndexRegistryRequest, context: Any
    ) -> AsyncIterator[catalog_pb2.IndexRegistryResponse]:
        for _ in range(3):
            self.seen.append(str(current()))
            yield catalog_pb2.IndexRegistryResponse()
            await asyncio.sleep(0)


class Api:
    def __init__(self, server: ApiServer, access: AccessInterceptor, servicer: WhoAmI) -> None:
        self.server = server
        self.access = access
        self.servicer = servicer

    def channel(self, credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
        target = f"127.0.0.1:{self.server.port}"
        if credentials is None:
            return grpc.aio.insecure_channel(target)
        return grpc.aio.secure_channel(target, credentials)

    async def whoami(self, channel: grpc.aio.Channel, token: str | None = None) -> str:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        response = await stub.GetRegistry(
            catalog_pb2.GetRegistryRequest(name="registries/x"),
            metadata=bearer(token) if token else None,
        )
        return response.registry.name


@contextlib.asynccontextmanager
async def serving_access(
    settings: AuthSettings | None,
    credentials: grpc.ServerCredentials | None = None,
    *,
    servicer_class: type[Any] = WhoAmI,
    calls_at_once: int | None = None,
) -> AsyncIterator[Api]:
    access = AccessInterceptor(Access(settings), calls_at_once)
    # The generated base declares every method abstract; the others answer UNIMPLEMENTED.
    servicer: WhoAmI = servicer_class()
    server = build_server(
        "127.0.0.1:0", [catalog_service(servicer)], interceptors=[access], credentials=credentials
    )
    await server.start()
    try:
        yield Api(server, access, servicer)
    finally:
        await server.stop(grace=None)


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    async with running_issuer() as running:
        yield running
