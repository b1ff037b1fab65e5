"""The server's live look-ups. Its callers name the registries one asks: one the catalog does
not store is asked only on a public network. Else a caller allowed to check (or anyone creating
a pod, through admission) would make the server probe its own network, and speak plain HTTP to
this machine's ports (a loopback stranger is this machine: plain HTTP by default). And a stopped
server leaves none of their threads behind (a process starting and stopping servers, a test run
or an embedding, would keep each one's idle threads)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session, sessionmaker

from catalog.api.v1 import gate_pb2, gate_pb2_grpc
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from catalog.index import live
from catalog.index.live import resolve_live
from catalog.oci.errors import NotAsked
from catalog.oci.reference import parse_image_reference
from catalog.oci.secrets import Secrets
from catalog.store.db import make_engine, session_factory, upgrade
from tests.harness.polling import until
from tests.hostile.registry_fakes import Fake, Request, send, serve
from tests.signing import key_policy

DIGEST = "sha256:" + "ab" * 32
REFUSED = "is not a registry of the catalog (as it spells the host), and not on a public network"


@pytest.fixture
def fake() -> Iterator[Fake]:
    """A registry on this machine that has nothing, and records every request."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 404)  # no body: the gate asks with HEAD

    with serve(handle) as running:
        yield running


async def _gate(channel: grpc.aio.Channel, host: str) -> gate_pb2_grpc.GateServiceAsyncStub:
    """The gate, with a policy set asking a key's signature of ``host``'s images."""
    gate = gate_pb2_grpc.GateServiceStub(channel)
    source = key_policy(host, ec.generate_private_key(ec.SECP256R1()))
    policy = gate_pb2.Policy(name="policies/default", source=source)
    await gate.ApplyPolicy(gate_pb2.ApplyPolicyRequest(policy=policy))
    return gate


async def _served(tmp_path_factory: pytest.TempPathFactory, *stored: str) -> Server:
    where = tmp_path_factory.mktemp("strangers")
    config = ServeConfig(
        database=f"sqlite:///{where / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[RegistryConfig(name=f"r{n}", host=host) for n, host in enumerate(stored)],
    )
    server = Server(config)
    await server.start()
    return server


@pytest.fixture
async def stranger_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    server = await _served(tmp_path_factory)
    yield server
    await server.stop()


async def test_a_loopback_stranger_is_not_asked(fake: Fake, stranger_server: Server) -> None:
    """A tag resolved live: refused (permission denied, exit 5), nothing sent. An image by
    digest: decided on what the catalog holds (nothing: denied), nothing sent."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stranger_server.port}") as channel:
        gate = await _gate(channel, fake.host)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await gate.CheckImage(
                gate_pb2.CheckImageRequest(image=f"{fake.host}/shop/app:1.0", resolve_live=True)
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"{fake.host} {REFUSED}" in (refused.value.details() or "")
        by_digest = await gate.CheckImage(
            gate_pb2.CheckImageRequest(image=f"{fake.host}/shop/app@{DIGEST}")
        )
        assert not by_digest.decision.allowed
    assert fake.requests == []


async def test_a_stored_loopback_registry_is_asked(
    fake: Fake, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = await _served(tmp_path_factory, fake.host)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            gate = await _gate(channel, fake.host)
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await gate.CheckImage(
                    gate_pb2.CheckImageRequest(image=f"{fake.host}/shop/app:1.0", resolve_live=True)
                )
    finally:
        await server.stop()
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert [r.target for r in fake.requests] == ["/v2/shop/app/manifests/1.0"]


async def test_a_stopped_server_ends_its_live_look_ups_threads(
    fake: Fake, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = _live_threads()  # other gates' in this process (a CLI's is never closed)
    server = await _served(tmp_path_factory, fake.host)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            gate = await _gate(channel, fake.host)
            with pytest.raises(grpc.aio.AioRpcError) as unknown_tag:
                await gate.CheckImage(
                    gate_pb2.CheckImageRequest(image=f"{fake.host}/shop/app:1.0", resolve_live=True)
                )
        assert unknown_tag.value.code() == grpc.StatusCode.NOT_FOUND
        made = _live_threads() - before
        assert made  # the look-up ran on the gate's own threads
    finally:
        await server.stop()
    await until(lambda: not any(t.is_alive() for t in made), "the live threads to end", 5)


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("gate-live")}


@pytest.mark.parametrize(
    "host",
    [
        "localhost:5000",
        "[::1]:5000",
        "10.0.0.7:5000",
        "169.254.169.254",
        "[64:ff9b::a9fe:a9fe]",
        "registry.svc:5000",
        "metadata.google.internal",
    ],
)
async def test_strangers_inside_are_refused_before_any_request(
    host: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Refused on the host's name alone (none of these is reachable here: an attempt would take
    a connect timeout, or fail otherwise)."""
    with _sessions(tmp_path_factory) as sessions:
        reference = parse_image_reference(f"{host}/shop/app:1.0")
        with pytest.raises(NotAsked, match=re.escape(REFUSED)):
            await asyncio.wait_for(
                resolve_live(sessions, Secrets(), reference, public_strangers=True), 5
            )


def test_a_public_stranger_is_asked_with_plain_defaults(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """What a public stranger is asked with (asking it would leave this machine)."""
    with _sessions(tmp_path_factory) as sessions:
        assert live._settings(sessions, "registry.example", True) == (
            "registry.example",
            False,
            None,
            None,
        )


@contextlib.contextmanager
def _sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('rule') / 'catalog.db'}")
    upgrade(engine)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()
