"""WatchRun sends the run again, unchanged, every heartbeat: a watcher tells a long copy from a
silent server (the CLI gives up after 60 s without a message)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from replication.service import ReplicationService, RunView
from replication.spec import RuleSpec
from tests.replication.test_worker import catalog


async def test_an_unchanged_run_is_sent_every_heartbeat(tmp_path: Path) -> None:
    service = ReplicationService(catalog(tmp_path, "127.0.0.1:1", "127.0.0.1:2"))
    service.put_rule(RuleSpec(name="m", source="src", destination="dst", prefix="m"))
    run = service.trigger_run("m")
    assert run is not None  # pending: no worker runs it, so it never changes
    started = time.monotonic()
    seen = []
    async for view in service.watch_run(run.id, interval=0.05, heartbeat=0.3):
        seen.append(view)
        if len(seen) == 3:
            break
    assert seen[0] == seen[1] == seen[2]
    assert 0.5 < time.monotonic() - started < 10


async def test_watchers_of_one_run_share_its_reads(tmp_path: Path) -> None:
    """However many watch a run, the database is asked for it once an interval."""
    service = ReplicationService(catalog(tmp_path, "127.0.0.1:1", "127.0.0.1:2"))
    service.put_rule(RuleSpec(name="m", source="src", destination="dst", prefix="m"))
    run = service.trigger_run("m")
    assert run is not None
    reads = 0
    get_run = service.get_run

    def counted(run_id: int, rule: str | None = None) -> RunView:
        nonlocal reads
        reads += 1
        return get_run(run_id, rule)

    service.get_run = counted  # type: ignore[method-assign]

    async def watch() -> list[RunView]:
        seen = []
        async for view in service.watch_run(run.id, interval=0.05, heartbeat=0.3):
            seen.append(view)
            if len(seen) == 3:
                return seen
        return seen

    started = time.monotonic()
    watched = await asyncio.gather(*(watch() for _ in range(20)))
    took = time.monotonic() - started
    assert all(seen == watched[0] for seen in watched)
    # Each watcher alone would read every interval: 20 of them, ~20 times a second each.
    assert reads <= took / 0.05 + 5, (reads, took)
