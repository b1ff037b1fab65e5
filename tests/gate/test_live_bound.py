"""The gate's live path is bounded: checks of images the catalog has not seen start at most
``LIVE_AT_ONCE`` registry crawls at once, and checks of one image at once share one crawl."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.daemon.shared_pool import SharedPool
from catalog.gate._live_work import LIVE_AT_ONCE, LiveWork
from catalog.gate.checker import Gate, build_gate
from catalog.index import single
from catalog.oci.client import RegistryClient
from catalog.principals import SERVER, acting_as
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.schema import verifications
from catalog.trust.policy.stored import Policies
from catalog.trust.roots import TrustConfig
from tests.harness.faultproxy import FaultProxy, run_proxy
from tests.harness.images import build_image
from tests.harness.polling import until
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature
from tests.store.conftest import empty_database

IMAGES = 2 * LIVE_AT_ONCE
SHARED = 6  # the event loop's shared pool on 2 cores: min(32, cores + 4)


async def _signed_images(
    proxied: FaultProxy,
    rng: random.Random,
    key: ec.EllipticCurvePrivateKey,
    count: int,
    prefix: str = "",
) -> list[str]:
    """``count`` signed images, one a repository, pushed through the proxy (as checked)."""
    references = []
    async with RegistryClient(proxied.host) as client:
        for i in range(count):
            image = build_image(rng, layers=1, layer_size=512)
            repository = f"shop/{prefix}app{i}"
            await push_built(client, repository, image, "1.0")
            await push_signature(client, repository, image.digest, key)
            references.append(f"{proxied.host}/{repository}@{image.digest}")
    return references


def _gate(url: str, host: str, key: ec.EllipticCurvePrivateKey) -> tuple[Gate, Engine]:
    """A gate whose policy takes ``key``'s signatures on any image (``host`` named in it)."""
    engine = make_engine(url)
    upgrade(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    with acting_as(SERVER):
        source = key_policy(host, key).replace(f"{host}/shop/**", "**")
        Policies(sessions, set()).apply("default", source)
    return build_gate(sessions, TrustConfig()), engine


async def _most_in_flight(proxies: list[FaultProxy], work: Awaitable[object]) -> list[int]:
    """The most repositories with a request in flight at once while ``work`` ran: at all the
    ``proxies`` together, then at each."""
    most = [0] * (len(proxies) + 1)
    task = asyncio.ensure_future(work)
    while not task.done():
        each = [{e.path.split("/")[3] for e in p.events if e.status is None} for p in proxies]
        for i, count in enumerate([sum(map(len, each)), *map(len, each)]):
            most[i] = max(most[i], count)
        await asyncio.sleep(0.005)
    await task
    return most


async def test_checks_of_new_images_crawl_at_most_live_at_once_at_a_time_half_a_host(
    fresh_registry: RunningRegistry, proxied: FaultProxy, tmp_path: Path, rng: random.Random
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with run_proxy(fresh_registry.url) as other:  # a second host: the same registry's images
        references = [
            *await _signed_images(proxied, rng, key, IMAGES, "a"),
            *await _signed_images(other, rng, key, IMAGES, "b"),
        ]
        gate, _ = _gate(f"sqlite:///{tmp_path / 'catalog.db'}", proxied.host, key)
        for proxy in (proxied, other):
            proxy.reset_counters()
            proxy.latency = 0.1  # each request long enough for the crawls to overlap

        checks = asyncio.gather(*(gate.check(reference) for reference in references))
        together, at_one, at_other = await _most_in_flight([proxied, other], checks)

    assert [result.decision.allowed for result in await checks] == [True] * 2 * IMAGES
    # Without the bounds, all 32 crawled at once, 16 at each host (the figures seen).
    assert 2 <= together <= LIVE_AT_ONCE
    assert 1 <= at_one <= LIVE_AT_ONCE // 2
    assert 1 <= at_other <= LIVE_AT_ONCE // 2


async def test_a_registry_that_stalls_leaves_slots_for_the_others(
    fresh_registry: RunningRegistry, proxied: FaultProxy, tmp_path: Path, rng: random.Random
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with run_proxy(fresh_registry.url) as other:
        stalled = await _signed_images(proxied, rng, key, IMAGES, "a")
        (answering,) = await _signed_images(other, rng, key, 1, "b")
        gate, _ = _gate(f"sqlite:///{tmp_path / 'catalog.db'}", proxied.host, key)
        proxied.hang(1000, 30)  # every request: a registry that answers in its own time
        waiting = [asyncio.ensure_future(gate.check(reference)) for reference in stalled]
        await asyncio.sleep(0.5)  # they take the stalled host's slots
        try:
            async with asyncio.timeout(10):  # without the host's share: every slot held 30 s
                assert (await gate.check(answering)).decision.allowed
        finally:
            for check in waiting:
                check.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            proxied.clear()


def _recording() -> list[str]:
    """The threads now inside the live path's write of what it found (one snapshot: a thread
    that ends meanwhile is simply not in it)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return [
        names.get(ident, "?")
        for ident, frame in sys._current_frames().items()
        if any(seen.f_code is single._record.__code__ for seen, _ in traceback.walk_stack(frame))
    ]


async def test_live_writes_waiting_for_the_write_lock_leave_the_shared_threads_to_checks(
    fresh_registry: RunningRegistry, proxied: FaultProxy, tmp_path: Path, rng: random.Random
) -> None:
    # The shared pool a server on 2 cores has, whatever runs the test.
    asyncio.get_running_loop().set_default_executor(SharedPool(SHARED))
    key = ec.generate_private_key(ec.SECP256R1())
    with run_proxy(fresh_registry.url) as other:  # two hosts: every live slot taken
        new = [
            *await _signed_images(proxied, rng, key, LIVE_AT_ONCE // 2, "a"),
            *await _signed_images(other, rng, key, LIVE_AT_ONCE // 2, "b"),
        ]
        (unseen,) = await _signed_images(other, rng, key, 1, "c")
        database = tmp_path / "catalog.db"
        gate, engine = _gate(f"sqlite:///{database}", proxied.host, key)
        gate.audit.start()  # decisions written in the background, as a server's are
        # An index run's write transaction, as long as the test needs it.
        locker = sqlite3.connect(database, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        checks = [asyncio.ensure_future(gate.check(reference)) for reference in new]
        try:
            # Found, and waiting to write it: as many as the shared pool has threads (on it, no
            # more could), then a moment for the others.
            await until(lambda: len(_recording()) >= SHARED, "live writes")
            await asyncio.sleep(0.3)
            recording = _recording()
            started = time.monotonic()
            # A check that reads the catalog on a shared thread (offline: asks no registry).
            try:
                async with asyncio.timeout(5):
                    decided = await gate.check(unseen, offline=True)
            except TimeoutError:
                pytest.fail("the check waited 5 s for a thread")
            waited = time.monotonic() - started
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        results = await asyncio.gather(*checks)
        await gate.audit.stop()
        engine.dispose()

    # Live writes waited on threads of their own, all 8 (on the shared pool, six of them held
    # all six threads: the check waited for the lock's end, past the test's 5 s).
    assert len(recording) == LIVE_AT_ONCE, recording  # one thread a slot
    assert all(name.startswith("gate-live") for name in recording), recording
    assert waited < 3.0
    assert not decided.decision.allowed  # nothing known of it, and not asked
    # Nothing lost: once the lock was gone every write went through.
    assert [result.decision.allowed for result in results] == [True] * LIVE_AT_ONCE


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_checks_of_one_new_image_at_once_share_one_crawl_and_one_verification(
    proxied: FaultProxy,
    tmp_path: Path,
    rng: random.Random,
    database: str,
    request: pytest.FixtureRequest,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first, second = await _signed_images(proxied, rng, key, 2)
    gate, engine = _gate(empty_database(database, tmp_path, request), proxied.host, key)
    proxied.reset_counters()
    proxied.latency = 0.05

    assert (await gate.check(first)).decision.allowed
    alone = len(proxied.requests)
    proxied.reset_counters()
    results = await asyncio.gather(*(gate.check(second) for _ in range(10)))
    assert all(result.decision.allowed for result in results)
    assert len(proxied.requests) == alone  # one crawl's requests, not ten
    # Each check verified the new signature at the same time; one result is stored (the others
    # failed on the unique key before: an internal error for all but one caller).
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(verifications))
    assert stored == 2  # one for each image


def _counting(
    started: list[int], release: asyncio.Event, value: int
) -> Callable[[], Awaitable[int]]:
    """Work that says it started, then waits for ``release``."""

    async def work() -> int:
        started.append(value)
        await release.wait()
        return value

    return work


async def test_a_call_every_caller_left_is_cancelled_and_frees_its_slot() -> None:
    live = LiveWork(at_once=1)
    release = asyncio.Event()
    started: list[int] = []
    first = asyncio.ensure_future(live.run("h", "a", _counting(started, release, 1)))
    await asyncio.sleep(0.01)
    waiting = asyncio.ensure_future(live.run("h", "b", _counting(started, release, 2)))
    await asyncio.sleep(0.01)
    assert started == [1]  # "b" waits for the only slot

    first.cancel()  # its only caller leaves: "a" is cancelled, and "b" takes the slot
    await asyncio.sleep(0.01)
    assert started == [1, 2]
    assert live.running == 1
    release.set()
    assert await waiting == 2
    assert live.running == 0


async def test_one_caller_leaving_ends_no_other_callers_call() -> None:
    live = LiveWork(at_once=1)
    release = asyncio.Event()
    started: list[int] = []
    work = _counting(started, release, 7)
    leaving = asyncio.ensure_future(live.run("h", "a", work))
    staying = asyncio.ensure_future(live.run("h", "a", work))
    await asyncio.sleep(0.01)
    leaving.cancel()
    await asyncio.sleep(0.01)
    release.set()
    assert await staying == 7
    assert started == [7]  # one run for both callers
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    live = LiveWork()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise ValueError("the registry said no")

    results = await asyncio.gather(
        live.run("h", "a", failing), live.run("h", "a", failing), return_exceptions=True
    )
    assert [str(result) for result in results] == ["the registry said no"] * 2
    assert calls == 1
    with pytest.raises(ValueError, match="said no"):
        await live.run("h", "a", failing)  # asked again: a new run
    assert calls == 2
