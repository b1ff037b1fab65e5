"""WatchRun sends the run again, unchanged, every heartbeat: a watcher tells a long copy from a
silent server (the CLI gives up after 60 s without a message)."""

from __future__ import annotations

import time
from pathlib import Path

from replication.service import ReplicationService
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
