"""A replication task has a deadline of its own: registries slow enough, each request within its
limits, cannot hold a task's slot for ever; the task fails and says why."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from sqlalchemy import select

from replication.models import ReplicationTask
from replication.service import ReplicationService
from replication.spec import RuleSpec
from replication.worker import Worker
from tests.harness.images import build_image
from tests.replication.conftest import Pair, digest_of, push_to
from tests.replication.test_worker import catalog


async def test_a_task_past_its_deadline_fails_saying_so(
    pair: Pair, tmp_path: Path, rng: random.Random
) -> None:
    await push_to(pair.source.host, "app", build_image(rng, layers=3), "1")
    sessions = catalog(tmp_path, pair.source_proxy.host, pair.destination_proxy.host)
    service = ReplicationService(sessions)
    service.put_rule(RuleSpec(name="m", source="src", destination="dst", prefix="m"))
    run = service.trigger_run("m")
    assert run is not None
    pair.destination_proxy.latency = 1.0  # every destination request answers, slowly
    worker = Worker(sessions, poll=0.1, task_deadline=1.5)
    began = time.monotonic()
    await asyncio.wait_for(worker.finish(run.id), 30)
    took = time.monotonic() - began
    with sessions() as session:
        task = session.scalars(select(ReplicationTask)).one()
    assert task.status == "failed"
    assert task.reason == "UNAVAILABLE: copying app:1: stopped at its deadline of 1.5 s"
    assert took < 15
    pair.destination_proxy.latency = 0
    assert await digest_of(pair.destination.host, "m/app", "1") is None
