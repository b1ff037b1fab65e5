"""The server's edges through real channels: bytes that are no message, messages over the size
limits, and calls that would run without end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, ClassVar

import grpc
import grpc.aio
import pytest

from catalog.api.server import MAX_RECEIVE, MAX_SEND, build_server, catalog_service
from catalog.api.v1 import audit_pb2, catalog_pb2, catalog_pb2_grpc, gate_pb2, replication_pb2
from catalog.app.config import ServeConfig
from catalog.daemon import Server
from tests.api.conftest import Serve

GARBAGE = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # a varint tag that never ends well
CATALOG = "/xregistry.v1.CatalogService"


def raw_unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
    # Identity serializers: the bytes go out as given, the answer comes back undecoded.
    return channel.unary_unary(
        f"{CATALOG}/{method}", request_serializer=None, response_deserializer=None
    )


class Recording(catalog_pb2_grpc.CatalogServiceServicer):
    calls: ClassVar[list[str]] = []

    async def GetRegistry(
        self, request: catalog_pb2.GetRegistryRequest, context: Any
    ) -> catalog_pb2.GetRegistryResponse:
        Recording.calls.append(request.name[:20])
        return catalog_pb2.GetRegistryResponse()

    async def IndexRegistry(self, request: Any, context: Any) -> Any:
        Recording.calls.append("index")
        yield catalog_pb2.IndexRegistryResponse()


async def test_garbage_bytes_are_invalid_argument_and_never_reach_the_servicer(
    serve: Serve,
) -> None:
    Recording.calls = []
    async with serve(Recording) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw_unary(channel, "GetRegistry")(GARBAGE, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid message" in (err.value.details() or "")

        stream: grpc.aio.UnaryStreamMultiCallable[Any, Any] = channel.unary_stream(
            f"{CATALOG}/IndexRegistry", request_serializer=None, response_deserializer=None
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stream(GARBAGE, timeout=10):
                pass
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        # A well-formed message over the same raw channel still gets through.
        good = catalog_pb2.GetRegistryRequest(name="registries/hub").SerializeToString()
        answer = await raw_unary(channel, "GetRegistry")(good, timeout=10)
        assert answer == b""
    assert Recording.calls == ["registries/hub"]


async def test_a_request_over_the_receive_limit_is_refused_unread(serve: Serve) -> None:
    Recording.calls = []
    async with serve(Recording) as (_, channel):
        big = catalog_pb2.GetRegistryRequest(name="r" * (MAX_RECEIVE + 1)).SerializeToString()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw_unary(channel, "GetRegistry")(big, timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Just under the limit is read and handed on.
        fits = catalog_pb2.GetRegistryRequest(name="r" * (MAX_RECEIVE - 64)).SerializeToString()
        await raw_unary(channel, "GetRegistry")(fits, timeout=10)
    assert Recording.calls == ["r" * 20]


class Huge(catalog_pb2_grpc.CatalogServiceServicer):
    async def ListRegistries(self, request: Any, context: Any) -> Any:
        return catalog_pb2.ListRegistriesResponse(next_page_token="t" * (MAX_SEND + 1))


async def test_a_response_over_the_send_limit_is_not_sent(serve: Serve) -> None:
    async with (
        serve(Huge) as (server, _),
        grpc.aio.insecure_channel(
            f"127.0.0.1:{server.port}", options=[("grpc.max_receive_message_length", -1)]
        ) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw_unary(channel, "ListRegistries")(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


class Stuck(catalog_pb2_grpc.CatalogServiceServicer):
    async def GetRegistry(self, request: Any, context: Any) -> Any:
        await asyncio.sleep(3600)
        return catalog_pb2.GetRegistryResponse()


async def test_a_call_without_a_client_deadline_ends_at_the_server_deadline() -> None:
    server = build_server(
        "127.0.0.1:0",
        [catalog_service(Stuck())],  # type: ignore[abstract]  # the rest answer UNIMPLEMENTED
        server_deadline=0.5,
    )
    async with server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw_unary(channel, "GetRegistry")(b"")  # no timeout: the server's applies
        took = time.monotonic() - started
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "after 0.5 s" in (err.value.details() or "")
    print(f"\nstopped after {took:.2f} s")
    # Measured 0.50-0.52 s; the margin is for a loaded machine.
    assert 0.45 <= took < 5


async def status_of(channel: grpc.aio.Channel, path: str, streaming: bool) -> grpc.StatusCode:
    """The status of one call of ``path`` with :data:`GARBAGE` for its request."""
    try:
        if streaming:
            stream: grpc.aio.UnaryStreamMultiCallable[Any, Any] = channel.unary_stream(path)
            async for _ in stream(GARBAGE, timeout=10):
                pass
        else:
            unary: grpc.aio.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(path)
            await unary(GARBAGE, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_garbage_bytes_to_every_method_of_the_served_api(tmp_path: Path) -> None:
    """`xregistry serve`'s server: every method of every service answers INVALID_ARGUMENT to
    bytes that are no message, and a method that does not exist answers UNIMPLEMENTED."""
    config = ServeConfig(database=f"sqlite:///{tmp_path / 'c.db'}", listen="127.0.0.1:0")
    service = Server(config)
    await service.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            codes = {
                f"/{described.full_name}/{method.name}": await status_of(
                    channel, f"/{described.full_name}/{method.name}", method.server_streaming
                )
                for module in (catalog_pb2, gate_pb2, replication_pb2, audit_pb2)
                for described in module.DESCRIPTOR.services_by_name.values()
                for method in described.methods
            }
            missing = await status_of(channel, f"{CATALOG}/Nope", False)
    finally:
        await service.stop()
    assert len(codes) == 27  # every method of the four services
    assert {c for c in codes.values() if c != grpc.StatusCode.INVALID_ARGUMENT} == set(), codes
    assert missing == grpc.StatusCode.UNIMPLEMENTED
