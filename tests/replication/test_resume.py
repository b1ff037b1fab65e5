"""A run survives its process: kill -9 in the middle, start again, and it finishes with nothing
that had landed copied twice."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from catalog.store.db import make_engine, session_factory
from replication import store
from replication.service import ReplicationService
from replication.statuses import OPEN_RUN
from tests.harness.images import build_image
from tests.harness.serve_process import ServeProcess
from tests.replication.conftest import Pair, assert_mirrored, push_to
from tests.replication.serving import landed_writes, mirror_config, tasks, wait_for


async def test_kill_9_mid_run_then_restart_finishes_without_recopying(
    pair: Pair, tmp_path: Path, rng: random.Random
) -> None:
    for n in range(12):
        image = build_image(rng, layers=3, layer_size=64 * 1024)
        await push_to(pair.source.host, f"acme/app{n % 3}", image, f"1.{n}")
    database = f"sqlite:///{tmp_path / 'xregistry.db'}"
    config = mirror_config(tmp_path / "serve.yaml", database, pair, "2s", prefix="m")
    pair.destination_proxy.latency = 0.05  # slow enough to be caught in the middle
    log = tmp_path / "serve.log"
    first = ServeProcess(config, log)
    first.start()
    engine = make_engine(database)
    sessions = session_factory(engine)
    try:
        run = ReplicationService(sessions).trigger_run("mirror")
        assert run is not None

        def some_done() -> bool:
            states = Counter(t.status for t in tasks(sessions, run.id))
            return states["copied"] >= 3 and states["running"] >= 1

        await wait_for(some_done, 60, "a few images copied and others in flight")
        first.kill()
        interrupted = [t.id for t in tasks(sessions, run.id) if t.status == "running"]
        assert interrupted, "nothing was in flight at the kill"
        with sessions() as session:
            assert store.get_run(session, run.id).status == "running"

        second = ServeProcess(config, log)
        second.start()
        try:

            def finished() -> bool:
                with sessions() as session:
                    return store.get_run(session, run.id).status not in OPEN_RUN

            await wait_for(finished, 90, "the run to finish after the restart")
        finally:
            second.stop()

        final = ReplicationService(sessions).get_run(run.id)
        assert final.status == "succeeded", final
        # An image that had wholly landed before the kill is skipped when taken over.
        assert set(final.outcomes) <= {"copied", "skipped"}
        assert sum(final.outcomes.values()) == 12
        by_id = {t.id: t for t in tasks(sessions, run.id)}
        assert {by_id[i].attempts for i in interrupted} == {2}  # taken over after the lease
        assert all(t.attempts == 1 for i, t in by_id.items() if i not in interrupted)
        writes = landed_writes(pair.destination_proxy)
        assert len(writes) >= 12 * 4  # 3 layers, a config (shared ones mounted) and a manifest
        twice = {write: n for write, n in writes.items() if n > 1}
        assert twice == {}, f"written twice: {twice}"
        pair.destination_proxy.latency = 0
        assert await assert_mirrored(pair.source.host, pair.destination.host, "m") >= 12
    finally:
        first.stop()  # killed already unless a wait above failed
        engine.dispose()
