"""One caller's flood of calls: past ``calls_at_once`` running calls its next call is refused
at once (RESOURCE_EXHAUSTED, naming the caller, never its token), and every other caller's calls
go on. Counted after authentication: a caller without valid credentials holds no slot."""

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
from catalog.cli.channel import ClientSecurity, open_aio_channel
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


async def test_without_authentication_every_caller_is_the_anonymous_one() -> None:
    async with (
        serving_access(None, servicer_class=Held, calls_at_once=AT_ONCE) as api,
        api.channel() as channel,
    ):
        running = await _held(api, channel, None)
        error = await refused(_ask(channel, None, timeout=5))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Health is never refused for load: probes must not fail because callers wait.
        health = health_check(channel)
        checks = [health(health_pb2.HealthCheckRequest(), timeout=5) for _ in range(8)]
        assert {(await check).status for check in checks} == {
            health_pb2.HealthCheckResponse.SERVING
        }
        Held.release.set()
        for call in running:
            await call
        assert api.access.slots.running("anonymous:anonymous") == 0


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


async def test_the_clis_channel_tries_a_refused_call_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Many CI jobs on one token: a job refused for the others' calls waits its turn."""
    caplog.set_level(logging.INFO, logger="catalog.api.access.interceptor")
    async with (
        serving_access(settings(), servicer_class=Held, calls_at_once=AT_ONCE) as api,
        api.channel() as channel,
    ):
        running = await _held(api, channel, FLOODER)
        server = f"127.0.0.1:{api.server.port}"
        async with open_aio_channel(server, ClientSecurity(token=FLOODER)) as cli:
            asked = asyncio.ensure_future(_ask(cli, None))  # the channel sends the token
            for _ in range(500):
                if "token:flood refused a call" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            Held.release.set()  # the others end: a slot is free for the next try
            assert (await asked).registry.name == "token:flood"
        for call in running:
            await call
