"""A real grpc.aio server on a free loopback port, and a channel to it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from catalog.api.server import ApiServer, build_server, catalog_service

Serve = Callable[[Any], contextlib.AbstractAsyncContextManager[tuple[ApiServer, grpc.aio.Channel]]]


@contextlib.asynccontextmanager
async def serving(servicer_class: type[Any]) -> AsyncIterator[tuple[ApiServer, grpc.aio.Channel]]:
    # A class rather than an instance: the generated stubs declare every servicer method
    # abstract, and test servicers implement only what they test (the rest answer UNIMPLEMENTED).
    server = build_server("127.0.0.1:0", [catalog_service(servicer_class())])
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield server, channel
    finally:
        await server.stop(grace=None)


@pytest.fixture
def serve() -> Serve:
    """``async with serve(ServicerClass) as (server, channel): …``"""
    return serving
