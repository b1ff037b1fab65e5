"""``EvaluateCatalog`` on a real server and registry with real gRPC clients: one whose client
leaves stops judging (on the old code the server's thread judged every image to the end, its
transaction open, for no one); what-ifs store nothing under a caller's keys; evaluations leave
threads for checks."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.api.gate_servicer import WALKS_AT_ONCE
from catalog.api.v1 import gate_pb2, gate_pb2_grpc
from catalog.app.auth_config import AuthSettings, Binding, Role, StaticToken
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from catalog.gate.checker import Gate
from catalog.oci.client import RegistryClient
from catalog.principals import current
from tests.api.access.conftest import bearer, sha256
from tests.harness.images import build_image
from tests.harness.polling import until
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

IMAGES = 6


@pytest.fixture
async def channel(
    fresh_registry: RunningRegistry, tmp_path: Path
) -> AsyncIterator[tuple[grpc.aio.Channel, str]]:
    await _push_images(fresh_registry)
    async with indexed_server(fresh_registry, tmp_path / "catalog.db") as opened:
        yield opened, fresh_registry.host


async def _push_images(registry: RunningRegistry) -> None:
    """``IMAGES`` unsigned images, ``shop/app{i}:1``."""
    rng = random.Random(7)
    async with RegistryClient(registry.host) as client:
        for i in range(IMAGES):
            image = build_image(rng, layers=1, layer_size=512)
            await push_built(client, f"shop/app{i}", image, "1")


@asynccontextmanager
async def indexed_server(
    registry: RunningRegistry, database: Path, auth: AuthSettings | None = None
) -> AsyncIterator[grpc.aio.Channel]:
    """A server on ``database`` with ``registry`` indexed, and a channel to it."""
    config = ServeConfig(
        database=f"sqlite:///{database}",
        listen="127.0.0.1:0",
        registries=[RegistryConfig(name="local", host=registry.host)],
        auth=auth,
    )
    server = Server(config)
    await server.start()
    try:
        await server.catalog.index("local")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as opened:
            yield opened
    finally:
        await server.stop()


async def test_a_cancelled_evaluation_stops_judging(
    channel: tuple[grpc.aio.Channel, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened, host = channel
    judged: list[str] = []  # the images whose facts the server's thread gathered
    first = threading.Event()
    release = threading.Event()
    stops: list[threading.Event] = []
    ended = threading.Event()
    facts, evaluate_catalog = Gate.facts, Gate.evaluate_catalog

    def counted_facts(self: Gate, session: Any, digest: str, *args: Any) -> Any:
        judged.append(digest)
        first.set()
        release.wait(30)  # the first image is judged until the client has left
        return facts(self, session, digest, *args)

    def watched(self: Gate, loaded: Any, **options: Any) -> Any:
        stops.extend(v for v in options.values() if isinstance(v, threading.Event))
        try:
            return evaluate_catalog(self, loaded, **options)
        finally:
            ended.set()

    monkeypatch.setattr(Gate, "facts", counted_facts)
    monkeypatch.setattr(Gate, "evaluate_catalog", watched)
    stub = gate_pb2_grpc.GateServiceStub(opened)
    policy = key_policy(host, ec.generate_private_key(ec.SECP256R1()))
    call = stub.EvaluateCatalog(gate_pb2.EvaluateCatalogRequest(source=policy))
    reading = asyncio.ensure_future(call.read())
    assert await asyncio.to_thread(first.wait, 30)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    # The server hears of it on this event loop: a few seconds at most, even on a busy machine.
    stop = stops[0] if stops else threading.Event()  # the old code had none to set
    await asyncio.to_thread(stop.wait, 5)
    release.set()
    assert await asyncio.to_thread(ended.wait, 30)
    assert len(judged) == 1, f"judged {len(judged)} of {IMAGES} images after the client left"


async def test_an_evaluation_holds_no_write_lock_between_images(
    fresh_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored policy with a key of its own verifies (and stores) every signature when first
    evaluated: each image's in a transaction of its own, so the decision log and crawls write
    in between."""
    key = ec.generate_private_key(ec.SECP256R1())
    rng = random.Random(8)
    async with RegistryClient(fresh_registry.host) as client:
        for i in range(3):
            image = await push_built(
                client, f"shop/app{i}", build_image(rng, layers=1, layer_size=512), "1"
            )
            await push_signature(client, f"shop/app{i}", str(image.digest), key)
    database = tmp_path / "catalog.db"
    writes: list[str] = []  # what another writer got, between the images' facts
    facts = Gate.facts

    def writing_between(self: Gate, session: Any, digest: str, *args: Any) -> Any:
        other = sqlite3.connect(database, timeout=0)  # no waiting: a held lock fails it
        try:
            other.execute("DELETE FROM audit_events WHERE id < 0")
            other.commit()
            writes.append("written")
        except sqlite3.OperationalError as exc:
            writes.append(str(exc))
        finally:
            other.close()
        return facts(self, session, digest, *args)

    async with indexed_server(fresh_registry, database) as opened:
        monkeypatch.setattr(Gate, "facts", writing_between)
        stub = gate_pb2_grpc.GateServiceStub(opened)
        policy = key_policy(fresh_registry.host, key)  # a key of its own: all verified anew
        await stub.ApplyPolicy(
            gate_pb2.ApplyPolicyRequest(policy=gate_pb2.Policy(name="policies/k", source=policy))
        )
        call = stub.EvaluateCatalog(gate_pb2.EvaluateCatalogRequest(policy="policies/k"))
        decisions = [r.decision for r in [r async for r in call] if r.HasField("decision")]
    assert [d.allowed for d in decisions] == [True, True, True]  # each signature verified
    assert writes == ["written"] * 3
    assert _verifications(database) == 3  # stored: the policy is the server's own


async def test_a_callers_what_if_with_keys_of_its_own_stores_nothing(
    fresh_registry: RunningRegistry, tmp_path: Path
) -> None:
    """Any caller who may evaluate brings the policy: with a new key each call, every stored
    result would be a new row of a trust version no one asks again."""
    rng = random.Random(9)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    async with RegistryClient(fresh_registry.host) as client:
        image = await push_built(
            client, "shop/app", build_image(rng, layers=1, layer_size=512), "1"
        )
        await push_signature(client, "shop/app", str(image.digest), keys[0])
    database = tmp_path / "catalog.db"
    async with indexed_server(fresh_registry, database) as opened:
        stub = gate_pb2_grpc.GateServiceStub(opened)
        allowed = []
        for key in keys:
            source = key_policy(fresh_registry.host, key)
            call = stub.EvaluateCatalog(gate_pb2.EvaluateCatalogRequest(source=source))
            allowed += [r.decision.allowed async for r in call if r.HasField("decision")]
    assert allowed == [True, False, False]  # each verified under its own key
    assert _verifications(database) == 0


def _verifications(database: Path) -> int:
    with closing(sqlite3.connect(database)) as connection:
        (count,) = connection.execute("SELECT count(*) FROM verifications").fetchone()
    return int(count)


class _Walks:
    """Walks of the catalog on the server's threads, each image's facts read slowly (a slow
    database: the thread is held, not busy; checks read at full speed): how many walked, how
    many at most at once, and how many evaluations got as far as waiting for a turn."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.walking = self.most = self.started = self.loaded = 0
        self.callers: list[str] = []  # whose walks started, in order
        counting = threading.Lock()
        walker = threading.local()
        facts, evaluate_catalog, adhoc = Gate.facts, Gate.evaluate_catalog, Gate.adhoc

        def slow_facts(gate: Gate, session: Any, digest: str, *args: Any) -> Any:
            if getattr(walker, "walking", False):
                time.sleep(0.3)
            return facts(gate, session, digest, *args)

        def counted(gate: Gate, loaded: Any, **options: Any) -> Any:
            with counting:
                self.callers.append(str(current()))
                self.started += 1
                self.walking += 1
                self.most = max(self.most, self.walking)
            walker.walking = True
            try:
                return evaluate_catalog(gate, loaded, **options)
            finally:
                walker.walking = False
                with counting:
                    self.walking -= 1

        def loading(gate: Gate, *args: Any, **options: Any) -> Any:
            try:
                return adhoc(gate, *args, **options)
            finally:
                with counting:
                    self.loaded += 1  # its walk is asked for next, on the event loop

        monkeypatch.setattr(Gate, "facts", slow_facts)
        monkeypatch.setattr(Gate, "evaluate_catalog", counted)
        monkeypatch.setattr(Gate, "adhoc", loading)


async def test_evaluations_leave_threads_for_checks(
    channel: tuple[grpc.aio.Channel, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An evaluation holds a thread for its whole walk. Enough of them at once held every thread
    of the shared pool (``min(32, cores + 4)``), and a deploy's check waited for a walk to end.
    At most ``WALKS_AT_ONCE`` walk at once; the others wait their turn and end all the same."""
    opened, host = channel
    walks = _Walks(monkeypatch)
    stub = gate_pb2_grpc.GateServiceStub(opened)
    policy = key_policy(host, ec.generate_private_key(ec.SECP256R1()))
    default = gate_pb2.Policy(name="policies/default", source=policy)
    await stub.ApplyPolicy(gate_pb2.ApplyPolicyRequest(policy=default))

    async def decisions() -> int:
        call = stub.EvaluateCatalog(gate_pb2.EvaluateCatalogRequest(source=policy), timeout=60)
        return len([r async for r in call if r.HasField("decision")])

    evaluating = [asyncio.ensure_future(decisions()) for _ in range(_POOL)]
    await until(lambda: walks.loaded == _POOL and walks.started >= WALKS_AT_ONCE, "the walks")
    started = time.monotonic()
    request = gate_pb2.CheckImageRequest(image=f"{host}/shop/app0:1")
    await stub.CheckImage(request, timeout=30)
    waited = time.monotonic() - started
    assert await asyncio.gather(*evaluating) == [IMAGES] * _POOL
    assert walks.most == WALKS_AT_ONCE
    assert waited < 1.0, f"the check waited {waited:.2f} s for a thread"


async def test_an_evaluation_whose_caller_left_while_it_waited_never_walks(
    channel: tuple[grpc.aio.Channel, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened, host = channel
    walks = _Walks(monkeypatch)
    stub = gate_pb2_grpc.GateServiceStub(opened)
    policy = key_policy(host, ec.generate_private_key(ec.SECP256R1()))
    request = gate_pb2.EvaluateCatalogRequest(source=policy)
    calls = [stub.EvaluateCatalog(request) for _ in range(_POOL)]
    # Every call's policy loaded (its walk asked for), the first walks under way.
    await until(lambda: walks.loaded == _POOL and walks.started == WALKS_AT_ONCE, "the walks")
    await asyncio.sleep(0.1)  # the loop takes the last walks' requests
    for call in calls:
        call.cancel()
    await until(lambda: walks.walking == 0, "the walks")  # each ends at its next image
    await asyncio.sleep(0.5)  # nothing else starts
    assert walks.started == WALKS_AT_ONCE


async def test_one_callers_evaluations_take_one_turn_and_anothers_walk_beside(
    fresh_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _push_images(fresh_registry)
    tokens = {name: f"xr_walker_{name}_{'0123456789abcdef' * 2}" for name in ("a", "b")}
    auth = AuthSettings(
        tokens=[StaticToken(name=name, sha256=sha256(token)) for name, token in tokens.items()],
        bindings=[Binding(role=Role.OPERATOR, principals=["token:a", "token:b"])],
    )
    walks = _Walks(monkeypatch)
    policy = key_policy(fresh_registry.host, ec.generate_private_key(ec.SECP256R1()))
    async with indexed_server(fresh_registry, tmp_path / "catalog.db", auth) as opened:
        stub = gate_pb2_grpc.GateServiceStub(opened)

        async def decisions(caller: str) -> int:
            request = gate_pb2.EvaluateCatalogRequest(source=policy)
            call = stub.EvaluateCatalog(request, metadata=bearer(tokens[caller]), timeout=60)
            return len([r async for r in call if r.HasField("decision")])

        evaluating = [asyncio.ensure_future(decisions("a")) for _ in range(4)]
        await until(lambda: walks.loaded == 4 and walks.started >= 1, "the walks")
        evaluating.append(asyncio.ensure_future(decisions("b")))
        assert await asyncio.gather(*evaluating) == [IMAGES] * 5
    assert walks.callers[:2] == ["token:a", "token:b"]  # b's beside a's first, not after
    assert walks.most == WALKS_AT_ONCE


_POOL = min(32, (os.cpu_count() or 1) + 4)  # asyncio's shared pool
