"""A re-index records unchanged repositories together, at their group's commit (no savepoint
each, a statement of a kind for all of them), and still records what a re-index records: each
repository stamped indexed, its locations seen now, and a tag moved in an otherwise unchanged
group as before. On SQLite and PostgreSQL, against a real registry."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.app.catalog_service import CatalogService
from catalog.index.run import index_registry
from catalog.oci.client import RegistryClient
from catalog.store import queries
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import Repository
from catalog.store.registries import RegistrySpec
from tests.harness.images import build_artifact, build_image
from tests.harness.registry import RunningRegistry
from tests.harness.statements import recorded_statements
from tests.hostile.test_undecodable import SPDX
from tests.pushing import push_built
from tests.signing import push_signature

REPOSITORIES = ("a/app", "b/app", "c/app")
_databases = itertools.count()


async def _push(host: str, rng: random.Random) -> dict[str, str]:
    """Each repository: an image tagged v1, signed, with an SBOM referrer (fallback tag)."""
    key = ec.generate_private_key(ec.SECP256R1())
    images = {}
    async with RegistryClient(host) as client:
        for repository in REPOSITORIES:
            image = build_image(rng, layers=1, layer_size=512)
            await push_built(client, repository, image, "v1")
            await push_signature(client, repository, image.digest, key)
            sbom = build_artifact(image, "application/spdx+json", SPDX, "application/spdx+json")
            await push_built(client, repository, sbom)
            images[repository] = image.digest
    return images


def _catalog(kind: str, tmp_path: Path, request: pytest.FixtureRequest, host: str) -> Engine:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"reindex{next(_databases)}")
    engine = make_engine(url)
    upgrade(engine)
    CatalogService(session_factory(engine)).add_registry(RegistrySpec("r", host))
    return engine


def _indexed(sessions: sessionmaker[Session]) -> dict[str, datetime | None]:
    with sessions() as session:
        page = queries.list_repositories(session, "r", 100, None)
    return {view.name: view.last_indexed_at for view in page.items}


def _indexed_since(sessions: sessionmaker[Session], before: dict[str, datetime | None]) -> None:
    """Every repository stamped indexed by the last crawl, after ``before``."""
    for repository, indexed in _indexed(sessions).items():
        earlier = before[repository]
        assert indexed is not None
        assert earlier is not None
        assert indexed > earlier


def _seen(sessions: sessionmaker[Session], digest: str) -> dict[str, tuple[datetime, bool]]:
    with sessions() as session:
        found = queries.locations_of(session, [digest])[digest]
    return {view.repository: (view.last_seen, view.gone) for view in found}


async def _index(sessions: sessionmaker[Session]) -> None:
    stats = await index_registry(sessions, "r", CatalogService(sessions).secrets)
    assert stats.errors == 0


class _Indexed(NamedTuple):
    host: str  # the registry's
    images: dict[str, str]  # repository → its image
    engine: Engine
    sessions: sessionmaker[Session]
    before: dict[str, datetime | None]  # repository → indexed at


@pytest.fixture(params=["sqlite", "postgresql"])
async def indexed(
    fresh_registry: RunningRegistry,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    rng: random.Random,
) -> AsyncIterator[_Indexed]:
    """The repositories pushed to a registry of the test's own and indexed once, in a catalog
    on each database."""
    host = fresh_registry.host
    images = await _push(host, rng)
    engine = _catalog(request.param, tmp_path, request, host)
    sessions = session_factory(engine)
    await _index(sessions)
    yield _Indexed(host, images, engine, sessions, _indexed(sessions))
    engine.dispose()


@pytest.mark.usefixtures("one_group")
async def test_unchanged_repositories_take_a_statement_of_a_kind_together(
    indexed: _Indexed,
) -> None:
    _, images, engine, sessions, before = indexed
    seen = {repository: _seen(sessions, images[repository]) for repository in REPOSITORIES}

    with recorded_statements(engine) as statements:
        await _index(sessions)

    # Each repository took a savepoint, its reachable digests, its locations' and its row's
    # update (five statements, three here): now one of each kind for the three of them.
    def count(start: str) -> int:
        return sum(1 for statement in statements if statement.lstrip().startswith(start))

    assert count("SAVEPOINT") == 0
    assert count("UPDATE repositories") == 1
    assert count("UPDATE manifest_locations") == 1
    reachable = "WITH RECURSIVE found" if engine.dialect.name == "sqlite" else "WITH first"
    assert count(reachable) == 1
    # And what they record is as before: every repository indexed now, its image seen now.
    _indexed_since(sessions, before)
    for repository in REPOSITORIES:
        last_seen, gone = _seen(sessions, images[repository])[repository]
        assert last_seen > seen[repository][repository][0]
        assert not gone


@pytest.mark.usefixtures("one_group")
async def test_a_tag_moved_among_unchanged_repositories_is_recorded(
    indexed: _Indexed, rng: random.Random
) -> None:
    host, images, engine, sessions, before = indexed
    moved = build_image(rng, layers=1, layer_size=512)
    async with RegistryClient(host) as client:
        await push_built(client, "b/app", moved, "v1")

    with recorded_statements(engine) as statements:
        await _index(sessions)

    assert sum(1 for statement in statements if statement.startswith("SAVEPOINT")) == 1
    with sessions() as session:
        history = queries.tag_history(session, "r", "b/app", "v1", 10, None).items
        tags = queries.list_tags(session, "r", "b/app", False, 10, None).items
        gone = session.scalars(select(Repository.name).where(Repository.gone_at.is_not(None)))
        assert list(gone) == []
    assert [(event.old_digest, event.new_digest) for event in history] == [
        (images["b/app"], moved.digest),
        (None, images["b/app"]),
    ]
    assert {tag.name: tag.digest for tag in tags}["v1"] == moved.digest
    assert _seen(sessions, moved.digest)["b/app"][1] is False  # live
    assert _seen(sessions, images["b/app"])["b/app"][1] is True  # no tag reaches it now
    _indexed_since(sessions, before)
    for repository in ("a/app", "c/app"):
        assert _seen(sessions, images[repository])[repository][1] is False
