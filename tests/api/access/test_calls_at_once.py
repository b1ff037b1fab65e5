"""One caller's flood of calls: past ``calls_at_once`` running calls its next call is refused
at once (RESOURCE_EXHAUSTED, naming the caller, never its token), and every other caller's calls
go on. Counted after authentication: a caller without valid credentials holds no slot, and a
server without authentication counts nothing; health is never counted. The CLI tries a call
refused for this again, and no other."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.app.auth_config import AuthSettings, Binding, Role, StaticToken
from catalog.cli.channel import ClientSecurity, open_channel
from catalog.principals import current
from tests.api.access.conftest import Api, WhoAmI, bearer, serving_access, sha256
from tests.api.test_server import health_check

FLOODER, OTHER = "xr_flood_0123456789abcdef0123456789abcdef", "xr_other_0123456789abcdef01234567"
AT_ONCE = 4


class Held(WhoAmI):
    """GetRegistry of ``token:flood`` waits until released; anyone else's answers at once."""

    release = asyncio.Event()
    all_in = asyncio.Event()  # AT_ONCE calls are waiting
    entered = 0

    async def GetRegistry(
        self, request: catalog_pb2.GetRegistryRequest, context: Any
    ) -> catalog_pb2.GetRegistryResponse:
        if str(current()) in {"token:flood", "anonymous:anonymous"}:
            Held.entered += 1
            if Held.entered == AT_ONCE:
                Held.all_in.set()
            await Held.release.wait()
        return await super().GetRegistry(request, context)


def settings() -> AuthSettings:
    return AuthSettings(
        tokens=[
            StaticToken(name="flood", sha256=sha256(FLOODER)),
            StaticToken(name="other", sha256=sha256(OTHER)),
        ],
        bindings=[Binding(role=Role.VIEWER, principals=["token:flood", "token:other"])],
    )


def _ask(channel: grpc.aio.Channel, token: str | None, timeout: float = 10) -> Any:
    return catalog_pb2_grpc.CatalogServiceStub(channel).GetRegistry(
        catalog_pb2.GetRegistryRequest(name="registries/x"),
        metadata=bearer(token) if token else None,
        timeout=timeout,
    )


async def _held(api: Api, channel: grpc.aio.Channel, token: str | None) -> list[Any]:
    """``AT_ONCE`` calls of ``token`` running in the servicer, waiting to be released."""
    Held.release, Held.all_in, Held.entered = asyncio.Event(), asyncio.Event(), 0
    calls = [_ask(channel, token) for _ in range(AT_ONCE)]
    await asyncio.wait_for(Held.all_in.wait(), 10)
    return calls


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_a_callers_call_past_its_limit_is_refused_at_once_and_others_go_on() -> None:
    async with (
        serving_access(settings(), servicer_class=Held, calls_at_once=AT_ONCE) as api,
        api.channel() as channel,
    ):
        running = await _held(api, channel, FLOODER)

        asked_at = asyncio.get_running_loop().time()
        error = await refused(_ask(channel, FLOODER, timeout=5))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert asyncio.get_running_loop().time() - asked_at < 2  # refused, not queued
        details = error.details() or ""
        assert details == (
            "token:flood has 4 calls running, the most allowed at once; retry when one has ended"
        )
        assert FLOODER not in details

        # Another caller, and a caller without valid credentials, are not held up by the flood.
        assert (await _ask(channel, OTHER)).registry.name == "token:other"
        wrong = await refused(_ask(channel, "xr_wrong_0123456789abcdef0123456789ab"))
        assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED

        Held.release.set()
        assert [(await call).registry.name for call in running] == ["token:flood"] * AT_ONCE
        # Its calls ended: its slots are free again.
        assert (await _ask(channel, FLOODER)).registry.name == "token:flood"


async def test_without_authentication_nothing_is_counted() -> None:
    """A development server's callers are all the anonymous principal: a limit would be the
    whole server's, one client's calls refusing every other's."""
    async with (
        serving_access(None, servicer_class=Held, calls_at_once=AT_ONCE) as api,
        api.channel() as channel,
    ):
        running = await _held(api, channel, None)
        more = [_ask(channel, None) for _ in range(2 * AT_ONCE)]
        for _ in range(500):  # every one of them reaches the servicer, none refused
            if Held.entered == 3 * AT_ONCE:
                break
            await asyncio.sleep(0.01)
        assert Held.entered == 3 * AT_ONCE
        Held.release.set()
        for call in running + more:
            assert (await call).registry.name == "anonymous:anonymous"


async def test_health_is_never_counted() -> None:
    """Probes must not fail because callers hold calls open: health watches past the limit."""
    async with (
        serving_access(settings(), calls_at_once=AT_ONCE) as api,
        api.channel() as channel,
    ):
        watch = channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        watches = [watch(health_pb2.HealthCheckRequest(), timeout=10) for _ in range(2 * AT_ONCE)]
        for open_watch in watches:  # each is running: it has sent the status
            first = await open_watch.read()
            assert isinstance(first, health_pb2.HealthCheckResponse)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
        check = health_check(channel)
        assert (await check(health_pb2.HealthCheckRequest(), timeout=5)).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
        for open_watch in watches:
            open_watch.cancel()


async def test_a_refused_or_failed_call_gives_its_slot_back() -> None:
    async with (
        serving_access(settings(), servicer_class=Held, calls_at_once=AT_ONCE) as api,
        api.channel() as channel,
    ):
        running = await _held(api, channel, FLOODER)
        for call in running:
            call.cancel()  # the callers leave: their handlers are cancelled
        for _ in range(1000):  # their cancellation reaches the server
            if not api.access.slots.running("token:flood"):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the cancelled calls still hold their slots")
        Held.release.set()
        assert (await _ask(channel, FLOODER)).registry.name == "token:flood"
        assert api.access.slots.running("token:flood") == 0


def test_the_clis_channel_tries_a_call_refused_for_load_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Many CI jobs on one token: a job refused for the others' calls waits its turn."""
    caplog.set_level(logging.INFO, logger="catalog.api.access.interceptor")

    async def scenario() -> None:
        async with (
            serving_access(settings(), servicer_class=Held, calls_at_once=AT_ONCE) as api,
            api.channel() as channel,
        ):
            running = await _held(api, channel, FLOODER)
            server = f"127.0.0.1:{api.server.port}"
            with open_channel(server, ClientSecurity(token=FLOODER)) as cli:
                stub = catalog_pb2_grpc.CatalogServiceStub(cli)
                request = catalog_pb2.GetRegistryRequest(name="registries/x")
                asked = asyncio.ensure_future(asyncio.to_thread(stub.GetRegistry, request))
                for _ in range(500):
                    if "token:flood refused a call" in caplog.text:
                        break
                    await asyncio.sleep(0.01)
                Held.release.set()  # the others end: a slot is free for a next try
                assert (await asked).registry.name == "token:flood"
            for call in running:
                await call

    asyncio.run(scenario())


class Huge(WhoAmI):
    """GetRegistry answers more than the server may send, and counts how often it ran."""

    ran = 0

    async def GetRegistry(
        self, request: catalog_pb2.GetRegistryRequest, context: Any
    ) -> catalog_pb2.GetRegistryResponse:
        Huge.ran += 1
        return catalog_pb2.GetRegistryResponse(registry=catalog_pb2.Registry(name="x" * 5_000_000))


def test_a_response_over_the_size_limit_is_not_asked_again() -> None:
    """Also RESOURCE_EXHAUSTED, but after the handler ran: tried again, a write would run again
    (gRPC's own retry policy on that status code ran this handler five times)."""

    async def scenario() -> grpc.StatusCode:
        async with serving_access(settings(), servicer_class=Huge) as api:
            server = f"127.0.0.1:{api.server.port}"
            with open_channel(server, ClientSecurity(token=FLOODER)) as cli:
                stub = catalog_pb2_grpc.CatalogServiceStub(cli)
                request = catalog_pb2.GetRegistryRequest(name="registries/x")
                with pytest.raises(grpc.RpcError) as caught:
                    await asyncio.to_thread(stub.GetRegistry, request)
        return caught.value.code()

    Huge.ran = 0
    assert asyncio.run(scenario()) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert Huge.ran == 1
