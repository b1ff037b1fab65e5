"""Two transactions on one PostgreSQL database, each waiting for rows the other wrote (two
crawls recording the same new manifests in opposite orders): PostgreSQL ends one's wait. When
that is the crawl's, the repository it was recording is recorded again once its group has
committed (which ends the other's wait), not recorded as failed; what the undone recording had
counted is counted once."""

from __future__ import annotations

import logging
import random
import threading
import time

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from catalog.app.catalog_service import CatalogService
from catalog.index.crawler import Crawler, _RepoScan
from catalog.index.run import index_registry
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import IndexErrorRecord, Repository, Tag
from catalog.store.registries import RegistrySpec
from tests.harness.images import BuiltManifest, build_image
from tests.harness.postgres import RunningPostgres
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import push_signature

_INSERT = (
    "INSERT INTO manifests (digest, media_type, size, raw, first_seen)"
    " VALUES (%s, %s, %s, %s, now()) ON CONFLICT DO NOTHING"
)


_LINK = (
    "INSERT INTO attachments (subject_digest, attachment_digest, kind, scheme, first_seen)"
    " VALUES (%s, %s, 'signature', 'tag', now()) ON CONFLICT DO NOTHING"
)


def _insert(connection: psycopg.Connection[object], image: BuiltManifest) -> None:
    connection.execute(_INSERT, (image.digest, image.media_type, len(image.raw), image.raw))


def _waits_for_a_lock(postgres: RunningPostgres, database: str, pid: int) -> bool:
    with postgres.connect(database) as watcher:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return True
            time.sleep(0.02)
    return False


# Which row of the second repository the other transaction holds: its image's manifest (the
# crawl's recording waits at its first statement, nothing counted yet), or its signature's link
# (the recording waits after counting two new manifests and two tag events, to be put back).
HELD = {"manifest": (1, 2), "link": (3, 3)}  # → manifests new, tag events (and tags seen)


@pytest.mark.parametrize("held", HELD)
async def test_a_repository_caught_in_a_deadlock_is_recorded_again(
    postgres: RunningPostgres,
    fresh_registry: RunningRegistry,
    one_group: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    held: str,
) -> None:
    caplog.set_level(logging.INFO, logger="catalog.index.crawler")
    rng = random.Random(40)
    first, second = (build_image(rng, layers=1, layer_size=256) for _ in range(2))
    async with RegistryClient(fresh_registry.host) as client:
        await push_built(client, "deadlock/a", first, "v1")
        await push_built(client, "deadlock/b", second, "v1")
        if held == "link":
            key = ec.generate_private_key(ec.SECP256R1())
            signature = await push_signature(client, "deadlock/b", second.digest, key)
    database = f"deadlock_{held}"
    engine = make_engine(postgres.create_database(database))
    upgrade(engine)
    sessions = session_factory(engine)
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("r", fresh_registry.host))

    # The other transaction: it writes the second repository's manifest and does not commit;
    # its own deadlock check waits a minute, so that PostgreSQL ends the crawl's wait.
    other = postgres.connect(database, autocommit=False)
    other.execute("SET deadlock_timeout = '60s'")
    if held == "link":
        other.execute(_LINK, (second.digest, signature.digest))
    else:
        _insert(other, second)
    behind: list[BaseException] = []

    def write_the_first_then_commit() -> None:
        try:
            _insert(other, first)  # waits for the crawl's group, which holds that row
            other.commit()
        except BaseException as exc:
            behind.append(exc)

    recorded = Crawler._record_scan
    waiting = threading.Thread(target=write_the_first_then_commit)

    def record(self: Crawler, scan: _RepoScan, undo: bool) -> bool:
        done = recorded(self, scan, undo)
        if scan.name == "deadlock/a" and not waiting.is_alive():
            # The crawl's open group holds the first manifest's row: the other transaction
            # now waits for it, and the crawl, recording the second, will wait for the other.
            waiting.start()
            assert _waits_for_a_lock(postgres, database, other.info.backend_pid)
        return done

    monkeypatch.setattr(Crawler, "_record_scan", record)
    try:
        stats = await index_registry(sessions, "r", catalog.secrets, concurrency=1)
    finally:
        waiting.join(timeout=30)
        other.close()
    assert behind == []
    assert stats.errors == 0
    # Each once, the undone unit's not; the other transaction wrote the row it held.
    manifests_new, tag_events = HELD[held]
    assert stats.manifests_new == manifests_new
    assert (stats.tags_seen, stats.tag_events) == (tag_events, tag_events)
    assert stats.attachments_new == 0
    assert "deadlock/b: recorded again after a lock conflict: deadlock detected" in caplog.text
    with sessions() as session:
        assert list(session.scalars(select(IndexErrorRecord.reason))) == []
        names = select(Repository.name, Tag.digest).join(
            Repository, Tag.repository_id == Repository.id
        )
        tagged = {tuple(row) for row in session.execute(names)}
    expected = {("deadlock/a", first.digest), ("deadlock/b", second.digest)}
    if held == "link":
        expected.add(("deadlock/b", signature.digest))
    assert tagged == expected
    engine.dispose()
