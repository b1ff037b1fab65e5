"""Two ``xregistry serve`` processes on one PostgreSQL: each scheduled run is created once and
each of its images is copied once."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from datetime import UTC
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.store.db import make_engine, session_factory
from replication.models import ReplicationRun, ReplicationTask
from tests.harness.images import build_image
from tests.harness.postgres import RunningPostgres
from tests.harness.serve_process import ServeProcess
from tests.replication.conftest import Pair, assert_mirrored, push_to
from tests.replication.serving import landed_writes, mirror_config, tasks

PERIOD = 3  # seconds between scheduled runs
IMAGES = 16


def _copied(run: ReplicationRun, sessions: sessionmaker[Session]) -> bool:
    return any(t.status == "copied" for t in tasks(sessions, run.id))


def runs(sessions: sessionmaker[Session]) -> list[ReplicationRun]:
    with sessions() as session:
        return list(session.scalars(select(ReplicationRun).order_by(ReplicationRun.id)).all())


async def test_two_servers_run_a_scheduled_rule_once(
    pair: Pair, tmp_path: Path, rng: random.Random, postgres: RunningPostgres
) -> None:
    for n in range(IMAGES):
        await push_to(pair.source.host, f"acme/svc{n % 2}", build_image(rng, layers=2), f"v{n}")
    database = postgres.create_database("replicas")
    config = mirror_config(
        tmp_path / "serve.yaml", database, pair, "5s", schedule={"interval": f"{PERIOD}s"}
    )
    pair.destination_proxy.latency = 0.1  # runs outlast the 1 s poll: both replicas take tasks
    engine = make_engine(database)
    sessions = session_factory(engine)
    servers = [ServeProcess(config, tmp_path / f"serve{i}.log") for i in range(2)]
    # The source answers 503 until both replicas listen, so the first run that copies anything
    # is one both of them can take part in, however long either takes to start.
    pair.source_proxy.fail(1_000_000, 503)
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_listening()
        pair.source_proxy.clear()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            finished = [r for r in runs(sessions) if r.status in ("succeeded", "failed")]
            if len(finished) >= 3 and any(_copied(r, sessions) for r in finished):
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("three scheduled runs did not finish within a minute")
    finally:
        for server in servers:
            server.stop()
    logs = "".join(s.log.read_text() for s in servers)
    assert "Traceback" not in logs, logs[-3000:]

    scheduled = runs(sessions)
    times = [r.scheduled_for for r in scheduled]
    assert all(r.trigger == "schedule" for r in scheduled)
    assert len(set(times)) == len(times), "a scheduled time ran twice"
    for when in times:
        assert when is not None
        assert when.replace(tzinfo=UTC).timestamp() % PERIOD == 0  # on the shared grid
    with sessions() as session:
        all_tasks = list(session.scalars(select(ReplicationTask)).all())
    assert {t.attempts for t in all_tasks if t.status != "pending"} == {1}  # each claimed once
    shared = next(r for r in scheduled if _copied(r, sessions))
    tasks = [t for t in all_tasks if t.run_id == shared.id]
    assert sorted(t.status for t in tasks) == ["copied"] * IMAGES
    owners = Counter((t.lease_owner or "").split(":")[1] for t in tasks)  # host:pid:nonce
    assert len(owners) == 2, f"one replica did all the work: {owners}"
    writes = landed_writes(pair.destination_proxy)
    assert writes
    assert max(writes.values()) == 1
    pair.destination_proxy.latency = 0
    assert await assert_mirrored(pair.source.host, pair.destination.host) >= IMAGES
    engine.dispose()


async def test_replicas_wake_each_other_for_new_work(
    pair: Pair, tmp_path: Path, rng: random.Random, postgres: RunningPostgres
) -> None:
    """A run started on one replica is shared at once by the other, long before its next poll
    (PostgreSQL LISTEN/NOTIFY): without the announcement the second replica would sleep 60 s."""
    for n in range(IMAGES):
        await push_to(pair.source.host, f"acme/svc{n % 2}", build_image(rng, layers=2), f"v{n}")
    database = postgres.create_database("wake")
    config = mirror_config(tmp_path / "serve.yaml", database, pair, "5s", poll="60s")
    pair.destination_proxy.latency = 0.1
    sessions = session_factory(make_engine(database))
    servers = [ServeProcess(config, tmp_path / f"serve{i}.log") for i in range(2)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_listening()
        await asyncio.sleep(1.5)  # both idle now: their first look for work found none
        started = time.monotonic()
        address = f"127.0.0.1:{servers[0].port}"
        trigger = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "catalog.cli.main", "--server", address, "replicate", "run"),
            *("mirror", "--wait", "-o", "json"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(trigger.communicate(), timeout=60)
        took = time.monotonic() - started
    finally:
        for server in servers:
            server.stop()
    assert trigger.returncode == 0, stderr.decode()
    assert took < 30, f"the run took {took:.1f} s"
    (run,) = runs(sessions)
    with sessions() as session:
        tasks = list(session.scalars(select(ReplicationTask)).all())
    assert sorted(t.status for t in tasks) == ["copied"] * IMAGES
    owners = Counter((t.lease_owner or "").split(":")[1] for t in tasks)
    assert len(owners) == 2, f"the other replica was not woken: {owners}"
    assert run.status == "succeeded"
