"""Nothing lost silently: a real server's decision log under a write-locked database (SQLite:
another connection holding BEGIN EXCLUSIVE; PostgreSQL: LOCK TABLE decisions IN ACCESS
EXCLUSIVE MODE) keeps every decision it answered, or denies saying so, and reports NOT_SERVING
while it cannot write."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2
from sqlalchemy import Connection, event, func, insert, select
from sqlalchemy.engine import make_url

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc, gate_pb2, gate_pb2_grpc
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from catalog.gate.decision_log import Asked, DecisionLog, asked_columns
from catalog.gate.stored_results import record_decisions
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import DecisionRecord
from catalog.trust.policy.facts import Decision, Evidence
from tests.api.test_server import CATALOG, NOT_SERVING, SERVING, health_check
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import key_policy
from tests.store.conftest import empty_database

LOCKED_FOR = 15.0
CALLS = 500
REFUSED = "the decision log cannot be written"
GATE = "xregistry.v1.GateService"


@contextmanager
def write_locked(database: str) -> Iterator[threading.Event]:
    """The decisions table write-locked by another connection until the block ends; the event
    is set once the lock is held."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        if database.startswith("sqlite"):
            connection = sqlite3.connect(make_url(database).database or "", isolation_level=None)
            connection.execute("BEGIN EXCLUSIVE")
        else:
            url = make_url(database).set(drivername="postgresql")
            connection = psycopg.connect(url.render_as_string(hide_password=False))  # type: ignore[assignment]
            connection.execute("BEGIN")
            connection.execute("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
        held.set()
        release.wait()
        connection.rollback()
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10), "could not take the lock"
        yield held
    finally:
        release.set()
        holder.join()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database(request.param, tmp_path, request)


@pytest.fixture
async def served(
    fresh_registry: RunningRegistry, database: str, rng: random.Random
) -> AsyncIterator[Server]:
    """A server that has indexed one unsigned image, with a policy set that judges it."""
    host = fresh_registry.host
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", build_image(rng, layers=1, layer_size=512), "v1")
    config = ServeConfig(
        database=database,
        listen="127.0.0.1:0",
        registries=[RegistryConfig(name="local", host=host)],
    )
    service = Server(config)
    await service.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        async for _ in catalog.IndexRegistry(
            catalog_pb2.IndexRegistryRequest(name="registries/local")
        ):
            pass
        await gate_pb2_grpc.GateServiceStub(channel).ApplyPolicy(
            gate_pb2.ApplyPolicyRequest(
                policy=gate_pb2.Policy(
                    name="policies/default",
                    source=key_policy(host, ec.generate_private_key(ec.SECP256R1())),
                )
            )
        )
    yield service
    await service.stop()


def recorded(service: Server) -> int:
    with service.sessions() as session:
        return session.scalar(select(func.count(DecisionRecord.id))) or 0


async def watch_health(
    channel: grpc.aio.Channel, seen: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    """Every 0.2 s: (time, status) of the whole server."""
    check = health_check(channel)
    while not stop.is_set():
        answer = await check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        seen.append((time.monotonic(), answer.status))
        await asyncio.sleep(0.2)


async def decide_while_locked(
    served: Server, database: str, image: str, locked_for: float = LOCKED_FOR
) -> tuple[list[gate_pb2.Decision], list[tuple[float, int]], int]:
    """500 CheckImage calls in waves of 25 over ~5 s while the table is locked (15 s): the
    answers, the health seen from the lock until the log is empty again (seconds from the
    lock), and the rows recorded before."""
    seen: list[tuple[float, int]] = []
    stop = asyncio.Event()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        gate = gate_pb2_grpc.GateServiceStub(channel)
        request = gate_pb2.CheckImageRequest(image=image)
        await gate.CheckImage(request)  # warm: the decision is cached, no write needed to decide
        assert await _drained(served, 10)
        before = recorded(served)
        watcher = asyncio.create_task(watch_health(channel, seen, stop))
        answers: list[gate_pb2.Decision] = []
        with write_locked(database):
            locked_at = time.monotonic()
            for _ in range(CALLS // 25):
                wave = await asyncio.gather(*(gate.CheckImage(request) for _ in range(25)))
                answers += [answer.decision for answer in wave]
                await asyncio.sleep(0.2)
            assert served.gate.audit.waiting > 0, "the lock did not hold the writes back"
            await asyncio.sleep(max(0.0, locked_at + locked_for - time.monotonic()))
            if locked_for > 6:  # the gate cannot record: it is down, the catalog is not
                health = health_check(channel)
                statuses = [
                    (await health(health_pb2.HealthCheckRequest(service=name))).status
                    for name in (GATE, CATALOG)
                ]
                assert statuses == [NOT_SERVING, SERVING]
        released = time.monotonic()
        assert await _drained(served, 30), f"{served.gate.audit.waiting} rows still waiting"
        drained = time.monotonic() - released
        deadline = time.monotonic() + 10
        while not seen or seen[-1][1] != SERVING:
            assert time.monotonic() < deadline, "health did not come back to SERVING"
            await asyncio.sleep(0.2)
        stop.set()
        await watcher
    down = next((t - locked_at for t, status in seen if status == NOT_SERVING), -1.0)
    print(
        f"measured: {len(answers)} decisions in {locked_for:.0f} s of lock, written "
        f"{drained:.2f} s after the release; NOT_SERVING from {down:.1f} s"
    )
    return answers, [(t - locked_at, s) for t, s in seen], before


async def _drained(served: Server, within: float) -> bool:
    deadline = time.monotonic() + within
    while served.gate.audit.waiting:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_a_write_locked_database_loses_no_decision(
    served: Server, database: str, fresh_registry: RunningRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    answers, health, before = await decide_while_locked(
        served, database, f"{fresh_registry.host}/shop/app:v1"
    )
    assert len(answers) == CALLS
    assert not any(REFUSED in " ".join(d.reasons) for d in answers)  # 20,000 may wait
    assert recorded(served) == before + CALLS
    # NOT_SERVING while it could not write (a write waited 5 s, or failed), SERVING after.
    down = [t for t, status in health if status == NOT_SERVING]
    assert down, health
    assert 4 < down[0] < LOCKED_FOR, health
    assert health[-1][1] == SERVING
    said = [r.getMessage() for r in caplog.records if r.name == "xregistry.gate.decisions"]
    assert said[0].startswith("decisions cannot be written"), said  # and why:
    assert "a write has waited more than 5 s" in said[0]
    assert said[-1].startswith("decisions are written again"), said


async def test_a_full_log_denies_and_says_why(
    served: Server, database: str, fresh_registry: RunningRegistry
) -> None:
    """At most 200 may wait here: each decision past them is denied, saying the log cannot be
    written; every other one is recorded (a shorter lock: it only needs to outlast the calls)."""
    served.gate.audit.capacity = 200
    answers, _, before = await decide_while_locked(
        served, database, f"{fresh_registry.host}/shop/app:v1", locked_for=7.0
    )
    refused = [d for d in answers if any(REFUSED in reason for reason in d.reasons)]
    assert len(refused) == CALLS - 200
    assert all(not d.allowed and len(d.reasons) == 1 for d in refused)
    assert recorded(served) == before + CALLS - len(refused)


async def test_stopping_writes_what_waits_through_a_lock(database: str) -> None:
    """A server stopping while the table is locked keeps trying (up to its drain time)."""
    engine = make_engine(database)
    upgrade(engine)
    log = DecisionLog(session_factory(engine), interval=0.01)
    log.start()
    decision = Decision(False, "sha256:" + "a" * 64, "default", 1, "enforce", ("unsigned",))
    with write_locked(database):
        for n in range(50):
            assert log.add(f"registry.test/shop/app:{n}", decision, "t", cached=False)
        stopping = asyncio.create_task(log.stop(drain=20))
        await asyncio.sleep(2)
        assert not stopping.done()
    await asyncio.wait_for(stopping, 20)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count(DecisionRecord.id))) == 50
    engine.dispose()


async def test_stopping_stops_making_way_for_the_write_in_flight(database: str) -> None:
    """Stopped while a write waits for a lock, the writer no longer pauses the event loop for it
    (see decision_log._MAKE_WAY): stop's own flush waits for that write all the same."""
    engine = make_engine(database)
    upgrade(engine)
    log = DecisionLog(engine, interval=0.01)
    log.start()
    decision = Decision(False, "sha256:" + "a" * 64, "default", 1, "enforce", ("unsigned",))
    with write_locked(database):
        assert log.add("registry.test/shop/app:1", decision, "t", cached=False)
        for _ in range(200):  # the write starts within the interval, then waits for the lock
            await asyncio.sleep(0.01)
            if log._making_way is not None:
                break
        making_way = log._making_way
        assert making_way is not None
        assert not making_way.done()
        stopping = asyncio.create_task(log.stop(drain=20))
        await asyncio.sleep(0.5)
        assert not stopping.done()  # the write in flight still waits for the lock
        assert making_way.done()
    await asyncio.wait_for(stopping, 20)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count(DecisionRecord.id))) == 1
    engine.dispose()


async def test_a_row_the_database_refuses_is_logged_and_the_rest_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused row (a trigger here) must not hold back the others forever."""
    database = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = make_engine(database)
    upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON decisions WHEN NEW.reference LIKE '%:bad' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        )
    log = DecisionLog(session_factory(engine), interval=0.01)
    log.start()
    decision = Decision(False, "sha256:" + "a" * 64, "default", 1, "enforce", ("unsigned",))
    for tag in ("1", "2", "bad", "3"):
        log.add(f"registry.test/shop/app:{tag}", decision, "t", cached=False)
    await asyncio.sleep(0.5)
    log.add("registry.test/shop/app:4", decision, "t", cached=False)  # still writing after
    await asyncio.sleep(0.5)
    with engine.connect() as connection:
        written = connection.exec_driver_sql("SELECT reference FROM decisions ORDER BY id").all()
    await log.stop()
    engine.dispose()
    assert [r[0].rsplit(":", 1)[1] for r in written] == ["1", "2", "3", "4"]
    (line,) = [r.getMessage() for r in caplog.records if "refuses" in r.getMessage()]
    assert "registry.test/shop/app:bad" in line
    assert "refused by a trigger" in line
    assert log.problem is None


def test_rows_read_back_as_they_were_decided(database: str) -> None:
    """Every column round-trips through the log's insert (on SQLite written past SQLAlchemy's
    compiler, with its bind processors), read back through the ORM."""
    engine = make_engine(database)
    upgrade(engine)
    log = DecisionLog(session_factory(engine))
    evidence = Evidence("authority ci", "sha256:" + "b" * 64, "key", None, None, "ab12", 7, 1700)
    decision = Decision(True, "sha256:" + "a" * 64, "default", 3, "warn", ('q "é"',), (evidence,))
    asked = Asked("shop", "Pod/web", "CREATE", "system:serviceaccount:kube-system:job", True)
    before = datetime.now(UTC)
    assert log.add("registry.test/shop/app:1", decision, "t1", True, asked)
    assert log.add("registry.test/shop/app:2", decision, "t1", False)
    with session_factory(engine)() as session:
        first, second = session.scalars(select(DecisionRecord).order_by(DecisionRecord.id))
    engine.dispose()
    assert (first.reference, first.digest, first.policy_name, first.policy_version) == (
        "registry.test/shop/app:1",
        decision.digest,
        "default",
        3,
    )
    assert (first.trust_version, first.allowed, first.mode) == ("t1", True, "warn")
    assert first.cached
    assert first.reasons == ['q "é"']
    evidence_column: object = first.evidence  # the model types it list[str]
    assert evidence_column == [
        {
            "rule": "authority ci",
            "attachment_digest": "sha256:" + "b" * 64,
            "method": "key",
            "identity": None,
            "issuer": None,
            "key_fingerprint": "ab12",
            "log_index": 7,
            "integrated_time": 1700,
        }
    ]
    assert before <= first.decided_at <= datetime.now(UTC)
    assert (first.namespace, first.object_ref, first.operation, first.dry_run) == (
        "shop",
        "Pod/web",
        "CREATE",
        True,
    )
    assert first.requester == "system:serviceaccount:kube-system:job"
    assert (second.cached, second.namespace, second.dry_run) == (False, None, None)


async def test_a_batch_over_sqlites_parameter_limit_goes_in_whole(tmp_path: Path) -> None:
    """The multi-row insert splits a batch at SQLite's bound-parameter limit (lowered here to two
    rows' worth), in order."""
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    event.listen(
        engine,
        "connect",
        lambda connection, _: connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 40),
    )
    engine.dispose()  # connections made from now on have the lower limit
    log = DecisionLog(session_factory(engine), batch=5, interval=3600)
    log.start()  # a writer that sleeps: add() only queues
    decision = Decision(False, "sha256:" + "a" * 64, "default", 1, "enforce", ("unsigned",))
    for n in range(7):
        assert log.add(f"registry.test/shop/app:{n}", decision, "t", cached=False)
    assert log.flush() == 7
    await log.stop()
    with engine.connect() as connection:
        written = connection.exec_driver_sql("SELECT reference FROM decisions ORDER BY id").all()
    engine.dispose()
    assert [r[0].rsplit(":", 1)[1] for r in written] == [str(n) for n in range(7)]


def test_rows_stored_as_sqlalchemys_insert_stores_them(database: str) -> None:
    """The log's insert, written through the driver, stores what SQLAlchemy's own insert of the
    same decisions stores: every column, compared as the database holds it (SQLite: the value
    and its storage class; PostgreSQL: its text)."""
    engine = make_engine(database)
    upgrade(engine)
    evidence = Evidence("authority ci", "sha256:" + "b" * 64, "key", None, None, "ab12", 7, 1700)
    signed = Decision(True, "sha256:" + "a" * 64, "default", 3, "warn", ('q "é"',), (evidence,))
    unsigned = Decision(False, "sha256:" + "c" * 64, None, None, None, ("unsigned", "\u2603"))
    asked = asked_columns(Asked("shop", "Pod/web", "CREATE", "system:serviceaccount:x:y", True))
    times = (
        datetime(2026, 12, 6, 15, 4, 5, 120034, tzinfo=UTC),
        datetime(2026, 12, 6, 17, 4, 5, tzinfo=timezone(timedelta(hours=2))),  # microsecond 0
    )
    shared = [(times[0], "token:ci", asked), (times[1], "local:me", (None,) * 5)]
    queued = [
        ("registry.test/shop/app:1", signed, "t1", True, shared[0]),
        ("registry.test/shop/app:2", unsigned, "t1", False, shared[0]),
        ("registry.test/shop/app@sha256:" + "c" * 64, unsigned, "t2", True, shared[1]),
    ]
    columns = [c for c in DecisionRecord.__table__.columns if c.name != "id"]
    sqlite = database.startswith("sqlite")
    shown = ", ".join(
        f"typeof({c.name}), {c.name}" if sqlite else f"{c.name}::text" for c in columns
    )

    def stored(write: Callable[[Connection], None]) -> list[tuple[Any, ...]]:
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM decisions")
            write(connection)
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.exec_driver_sql(f"SELECT {shown} FROM decisions ORDER BY id")
            ]

    def by_sqlalchemy(connection: Connection) -> None:
        connection.execute(
            insert(DecisionRecord.__table__),
            [
                {
                    "reference": reference,
                    "digest": decision.digest,
                    "policy_name": decision.policy,
                    "policy_version": decision.policy_version,
                    "trust_version": trust,
                    "allowed": decision.allowed,
                    "mode": decision.mode,
                    "reasons": list(decision.reasons),
                    "evidence": [e._asdict() for e in decision.evidence],
                    "cached": cached,
                    "decided_at": decided_at,
                    "principal": principal,
                    **dict(
                        zip(
                            ("namespace", "object_ref", "operation", "requester", "dry_run"),
                            on,
                            strict=True,
                        )
                    ),
                }
                for reference, decision, trust, cached, (decided_at, principal, on) in queued
            ],
        )

    expected = stored(by_sqlalchemy)
    got = stored(lambda connection: record_decisions(connection, queued))
    engine.dispose()
    assert len(expected) == 3
    assert got == expected
