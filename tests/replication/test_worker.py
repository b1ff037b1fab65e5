"""The worker's edges: a lease lost mid-copy, a schedule firing while a run is open, a rule
edited mid-run, index events from a hand-run `xregistry index`, an unreachable source."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.cli.context import open_service
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec, create_registry
from replication.models import ReplicationTask
from replication.service import ReplicationService
from replication.spec import RuleSpec
from replication.statuses import Trigger
from replication.worker import Worker
from tests.harness.images import build_image
from tests.harness.ports import free_port
from tests.replication.conftest import Pair, digest_of, push_to


def catalog(tmp_path: Path, source: str, destination: str) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        for name, host in (("src", source), ("dst", destination)):
            create_registry(session, RegistrySpec(name=name, host=host, insecure=True))
    return sessions


async def test_a_copy_whose_lease_passed_to_another_worker_stops(
    pair: Pair, tmp_path: Path, rng: random.Random
) -> None:
    await push_to(pair.source.host, "app", build_image(rng, layers=3), "1")
    sessions = catalog(tmp_path, pair.source_proxy.host, pair.destination_proxy.host)
    service = ReplicationService(sessions)
    service.put_rule(RuleSpec(name="m", source="src", destination="dst", prefix="m"))
    run = service.trigger_run("m")
    assert run is not None
    pair.destination_proxy.latency = 0.4  # every destination request is slow
    worker = Worker(sessions, lease=0.6, poll=0.1)
    stop = asyncio.Event()
    working = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(100):  # until the task is being copied
            with sessions() as session:
                task = session.scalars(select(ReplicationTask)).first()
            if task is not None and task.status == "running":
                break
            await asyncio.sleep(0.05)
        with sessions.begin() as session:  # another worker takes it over
            session.execute(update(ReplicationTask).values(lease_owner="someone-else"))
        for _ in range(60):
            if not worker._tasks:
                break
            await asyncio.sleep(0.05)
        assert not worker._tasks, "the copy went on without its lease"
    finally:
        stop.set()
        await working
    with sessions() as session:
        task = session.scalars(select(ReplicationTask)).one()
    # Not recorded by the worker that lost it: still the other worker's to finish.
    assert (task.status, task.lease_owner) == ("running", "someone-else")
    pair.destination_proxy.latency = 0
    assert await digest_of(pair.destination.host, "m/app", "1") is None


async def test_an_outcome_for_a_task_taken_over_is_not_recorded_and_says_which(
    pair: Pair, tmp_path: Path, rng: random.Random, caplog: pytest.LogCaptureFixture
) -> None:
    await push_to(pair.source.host, "app", build_image(rng, layers=2), "1")
    sessions = catalog(tmp_path, pair.source_proxy.host, pair.destination_proxy.host)
    service = ReplicationService(sessions)
    service.put_rule(RuleSpec(name="m", source="src", destination="dst", prefix="m"))
    assert service.trigger_run("m") is not None
    pair.destination_proxy.latency = 0.2  # the copy outlasts the hand-over below
    worker = Worker(sessions, lease=30, poll=0.1)  # no renewal notices it before the copy ends
    stop = asyncio.Event()
    working = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(100):
            with sessions() as session:
                task = session.scalars(select(ReplicationTask)).first()
            if task is not None and task.status == "running":
                break
            await asyncio.sleep(0.05)
        assert task is not None
        with sessions.begin() as session:
            session.execute(update(ReplicationTask).values(lease_owner="someone-else"))
        for _ in range(200):
            if "not recorded" in caplog.text:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await working
        pair.destination_proxy.latency = 0
    assert f"task {task.id}: not recorded: taken over by another worker" in caplog.text
    with sessions() as session:
        assert session.scalars(select(ReplicationTask.status)).one() == "running"


async def test_schedules_wait_for_the_open_run_and_runs_keep_their_rule(
    pair: Pair, tmp_path: Path, rng: random.Random
) -> None:
    image = build_image(rng, layers=1)
    await push_to(pair.source.host, "app", image, "1")
    sessions = catalog(tmp_path, pair.source.host, pair.destination.host)
    service = ReplicationService(sessions)
    service.put_rule(RuleSpec(name="m", source="src", destination="dst", prefix="first"))
    manual = service.trigger_run("m")
    assert manual is not None
    assert service.trigger_run("m", Trigger.SCHEDULE, manual.created_at) is None  # still open
    # Edited after the run was made: the run copies as the rule was.
    service.put_rule(RuleSpec(name="m", source="src", destination="dst", prefix="second"))
    await Worker(sessions).finish(manual.id)
    assert service.get_run(manual.id).outcomes == {"copied": 1}
    assert await digest_of(pair.destination.host, "first/app", "1") == image.digest
    assert await digest_of(pair.destination.host, "second/app", "1") is None
    later = service.trigger_run("m", Trigger.SCHEDULE, manual.created_at)
    assert later is not None  # the previous run is closed now
    await Worker(sessions).finish(later.id)
    assert await digest_of(pair.destination.host, "second/app", "1") == image.digest


async def test_a_hand_run_index_starts_the_rules_that_follow_it(
    pair: Pair, tmp_path: Path, rng: random.Random
) -> None:
    await push_to(pair.source.host, "app", build_image(rng, layers=1), "1")
    sessions = catalog(tmp_path, pair.source.host, pair.destination.host)
    service = ReplicationService(sessions)
    service.put_rule(RuleSpec(name="follow", source="src", destination="dst", on_index=True))
    service.put_rule(RuleSpec(name="manual-only", source="src", destination="dst", prefix="x"))
    await open_service(f"sqlite:///{tmp_path / 'catalog.db'}").index("src")  # `xregistry index`
    (run,) = service.list_runs("follow").items
    assert (run.trigger, run.status) == ("index", "pending")  # a server's worker takes it
    assert service.list_runs("manual-only").items == []


async def test_an_unreachable_source_fails_the_run_and_the_worker_goes_on(
    tmp_path: Path, pair: Pair, rng: random.Random
) -> None:
    await push_to(pair.source.host, "app", build_image(rng, layers=1), "1")
    sessions = catalog(tmp_path, f"127.0.0.1:{free_port()}", pair.destination.host)
    with sessions.begin() as session:
        create_registry(session, RegistrySpec(name="good", host=pair.source.host, insecure=True))
    service = ReplicationService(sessions)
    service.put_rule(RuleSpec(name="dead", source="src", destination="dst"))
    service.put_rule(RuleSpec(name="alive", source="good", destination="dst"))
    dead, alive = service.trigger_run("dead"), service.trigger_run("alive")
    assert dead is not None
    assert alive is not None
    stop = asyncio.Event()
    working = asyncio.create_task(Worker(sessions, poll=0.1).run(stop))
    try:
        for _ in range(200):
            if service.get_run(dead.id).finished and service.get_run(alive.id).finished:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await working
    failed = service.get_run(dead.id)
    assert failed.status == "failed"
    assert failed.error
    assert "127.0.0.1" in failed.error
    assert service.get_run(alive.id).status == "succeeded"
