"""Two transactions on one PostgreSQL database, each waiting for rows the other wrote (two
crawls recording the same new rows in opposite orders): PostgreSQL ends one's wait. When that is
the crawl's, in a repository's recording or in one of its batches of documents, the repository
is crawled and recorded again once its group has committed (which ends the other's wait), not
recorded as failed; what the undone recording had counted is counted once."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from catalog.app.catalog_service import CatalogService
from catalog.index import crawler
from catalog.index.crawler import Crawler, _RepoScan
from catalog.index.progress import IndexStats
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
_SIGNATURE = (
    "INSERT INTO signatures (attachment_digest, layer_digest, format, extensions,"
    " signed_digests, layer_media_type, layer, annotations)"
    " VALUES (%s, %s, 'cosign', '{}', '[]', %s, '', '{}') ON CONFLICT DO NOTHING"
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


@dataclass
class Indexed:
    stats: IndexStats
    errors: list[str]
    tags: set[tuple[str, str]]  # (repository, digest) of every tag


async def _index_in_a_deadlock(
    postgres: RunningPostgres,
    registry: RunningRegistry,
    database: str,
    first: BuiltManifest,
    hold: Callable[[psycopg.Connection[object]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> Indexed:
    """Index ``registry`` (``deadlock/a`` holding ``first``, then ``deadlock/b``) while another
    transaction holds what ``hold`` writes, uncommitted: once the crawl's group holds the first
    image's manifest row, the other writes that row too and waits, and the crawl, recording what
    ``hold`` wrote, waits for the other. The other's own deadlock check waits a minute, so that
    PostgreSQL ends the crawl's wait."""
    engine = make_engine(postgres.create_database(database))
    upgrade(engine)
    sessions = session_factory(engine)
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("r", registry.host))
    other = postgres.connect(database, autocommit=False)
    other.execute("SET deadlock_timeout = '60s'")
    hold(other)
    behind: list[BaseException] = []

    def write_the_first_then_commit() -> None:
        try:
            _insert(other, first)  # waits for the crawl's group, which holds that row
            other.commit()
        except BaseException as exc:
            behind.append(exc)

    recorded = Crawler._record_scan
    waiting = threading.Thread(target=write_the_first_then_commit)

    def record(self: Crawler, scan: _RepoScan) -> bool:
        done = recorded(self, scan)
        if scan.name == "deadlock/a" and not waiting.is_alive():
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
    with sessions() as session:
        errors = list(session.scalars(select(IndexErrorRecord.reason)))
        names = select(Repository.name, Tag.digest).join(
            Repository, Tag.repository_id == Repository.id
        )
        tags = {(name, digest) for name, digest in session.execute(names)}
    engine.dispose()
    return Indexed(stats, errors, tags)


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
    expected = {("deadlock/a", first.digest), ("deadlock/b", second.digest)}
    async with RegistryClient(fresh_registry.host) as client:
        await push_built(client, "deadlock/a", first, "v1")
        await push_built(client, "deadlock/b", second, "v1")
        if held == "link":
            key = ec.generate_private_key(ec.SECP256R1())
            signature = await push_signature(client, "deadlock/b", second.digest, key)
            expected.add(("deadlock/b", signature.digest))

    def hold(other: psycopg.Connection[object]) -> None:
        if held == "link":
            other.execute(_LINK, (second.digest, signature.digest))
        else:
            _insert(other, second)

    indexed = await _index_in_a_deadlock(
        postgres, fresh_registry, f"deadlock_{held}", first, hold, monkeypatch
    )
    stats = indexed.stats
    assert (stats.errors, indexed.errors) == (0, [])
    # Each once, the undone unit's not; the other transaction wrote the row it held.
    manifests_new, tag_events = HELD[held]
    assert stats.manifests_new == manifests_new
    assert (stats.tags_seen, stats.tag_events) == (tag_events, tag_events)
    assert stats.attachments_new == 0
    assert "deadlock/b: recorded again after a lock conflict: deadlock detected" in caplog.text
    assert indexed.tags == expected


async def test_a_batch_of_documents_caught_in_a_deadlock_is_crawled_again(
    postgres: RunningPostgres,
    fresh_registry: RunningRegistry,
    one_group: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A large repository's documents are recorded a batch at a time while it is crawled:
    one batch caught in a deadlock is undone, and the repository crawled again, its other
    documents recorded; not an error on the batch's documents."""
    monkeypatch.setattr(crawler, "DOCUMENT_BATCH", 1)  # each signature a batch of its own
    caplog.set_level(logging.INFO, logger="catalog.index.crawler")
    rng = random.Random(41)
    first, second, third = (build_image(rng, layers=1, layer_size=256) for _ in range(3))
    key = ec.generate_private_key(ec.SECP256R1())
    async with RegistryClient(fresh_registry.host) as client:
        await push_built(client, "deadlock/a", first, "v1")
        await push_built(client, "deadlock/b", second, "v1")
        await push_built(client, "deadlock/b", third, "v2")
        signatures = sorted(
            [
                await push_signature(client, "deadlock/b", image.digest, key)
                for image in (second, third)
            ],
            key=lambda built: built.digest,
        )
    # The first batch's signature (batches go in digest order), as the crawl would record it.
    batched = signatures[0]
    layer = json.loads(batched.raw)["layers"][0]

    def hold(other: psycopg.Connection[object]) -> None:
        other.execute(_SIGNATURE, (batched.digest, layer["digest"], layer["mediaType"]))

    indexed = await _index_in_a_deadlock(
        postgres, fresh_registry, "deadlock_documents", first, hold, monkeypatch
    )
    stats = indexed.stats
    assert (stats.errors, indexed.errors) == (0, [])
    assert "deadlock/b: recorded again after a lock conflict: deadlock detected" in caplog.text
    # Crawled again: the batch the other transaction recorded is not fetched again; the other
    # signature is recorded once, by the crawl that was not undone.
    assert stats.documents == 1
    assert stats.manifests_new == 5  # the first image, and the second repository's four
    assert (stats.tags_seen, stats.tag_events) == (5, 5)
    assert stats.attachments_new == 2
    assert indexed.tags == {
        ("deadlock/a", first.digest),
        ("deadlock/b", second.digest),
        ("deadlock/b", third.digest),
        *(("deadlock/b", signature.digest) for signature in signatures),
    }
