"""How PushIndexer reads a registry's filters and remembers event ids: the filters once per
FILTER_TTL (not per delivery) and again by each run (the crawl, with the registry's settings),
which indexes only what they admit now; ids per registry, and only of events queued."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from catalog.app.catalog_service import CatalogService
from catalog.app.push_events import PushEvent, PushIndexer
from catalog.index.progress import IndexStats
from catalog.principals import Principal
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.views import RegistrySpec
from tests.harness.registry import run_registry


def catalog_at(path: Path) -> CatalogService:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return CatalogService(session_factory(engine))


def pushed(event_id: str, repository: str) -> PushEvent:
    return PushEvent(event_id, "push", repository, "1.0")


def refilter(catalog: CatalogService, host: str, *patterns: str) -> None:
    """Registry ``src`` again with other filters (the catalog has no update: delete, create)."""
    catalog.remove_registry("src")
    catalog.add_registry(RegistrySpec("src", host, repositories=patterns))


async def test_filters_are_read_once_per_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_at(tmp_path / "catalog.db")
    catalog.add_registry(RegistrySpec("src", "reg.example:5000", repositories=("shop/*",)))
    reads: list[str] = []
    read = catalog.get_registry

    def counted(name: str) -> object:
        reads.append(name)
        return read(name)

    monkeypatch.setattr(catalog, "get_registry", counted)
    indexer = PushIndexer(catalog, settle=60, filter_ttl=1.0)  # no run within the test
    try:
        for n in range(5):
            accepted = await indexer.accept("src", [pushed(f"e{n}", f"shop/app{n}")])
            assert accepted.queued == 1
        assert reads == ["src"]  # one read for five deliveries (was one each)
        refilter(catalog, "reg.example:5000", "team/*")
        await asyncio.sleep(1.1)  # past the TTL the change is seen
        accepted = await indexer.accept(
            "src", [pushed("t1", "team/api"), pushed("t2", "shop/late")]
        )
        assert (accepted.queued, accepted.ignored) == (1, 1)
        assert reads == ["src", "src"]
        # Unknown names are not kept (a notifier chooses them): each is read again.
        for _ in range(2):
            assert (await indexer.accept("nope", [pushed("u", "shop/api")])).ignored == 1
        assert reads[2:] == ["nope", "nope"]
        assert "nope" not in indexer._filters
    finally:
        await indexer.stop()


async def test_a_run_indexes_only_what_the_filters_admit_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_registry(tmp_path) as registry:
        catalog = catalog_at(tmp_path / "catalog.db")
        catalog.add_registry(RegistrySpec("src", registry.host, repositories=("shop/*",)))
        runs: list[tuple[str, list[str], int]] = []
        index = catalog.index_repositories
        reads: list[str] = []
        read = catalog.get_registry

        def counted(name: str) -> object:
            reads.append(name)
            return read(name)

        async def recorded(
            name: str, repositories: Sequence[str], notifiers: Sequence[Principal] = ()
        ) -> IndexStats:
            stats = await index(name, repositories, notifiers)
            runs.append((name, list(repositories), stats.repositories_total))
            return stats

        monkeypatch.setattr(catalog, "get_registry", counted)
        monkeypatch.setattr(catalog, "index_repositories", recorded)
        indexer = PushIndexer(catalog, settle=0.2, filter_ttl=0.5)
        try:
            assert (await indexer.accept("src", [pushed("e1", "shop/api")])).queued == 1
            refilter(catalog, registry.host, "team/*")  # before the run: shop/api is out now
            deadline = asyncio.get_running_loop().time() + 10
            while not runs:
                assert asyncio.get_running_loop().time() < deadline, "no run for shop/api"
                await asyncio.sleep(0.05)
            # The run read the filters again (with the registry's settings, not through the
            # service's view) and indexed nothing.
            assert runs == [("src", ["shop/api"], 0)]
            assert reads == ["src"]  # the delivery's; the run read the row once, itself
            assert catalog.list_repositories("src").items == []
            await asyncio.sleep(0.6)  # past the TTL the deliveries see the new filters
            assert (await indexer.accept("src", [pushed("e2", "team/api")])).queued == 1
            while len(runs) < 2:
                assert asyncio.get_running_loop().time() < deadline, "no run for team/api"
                await asyncio.sleep(0.05)
            assert runs[1] == ("src", ["team/api"], 1)
        finally:
            await indexer.stop()


async def test_ids_are_kept_per_registry_and_only_when_queued(tmp_path: Path) -> None:
    catalog = catalog_at(tmp_path / "catalog.db")
    for name in ("src", "mirror"):  # two names of one host: the notifier posts to both
        catalog.add_registry(RegistrySpec(name, "reg.example:5000"))
    indexer = PushIndexer(catalog, settle=60, max_pending=2)
    try:
        first = await indexer.accept("src", [pushed("e1", "shop/a")])
        assert (first.queued, first.duplicates) == (1, 0)
        other = await indexer.accept("mirror", [pushed("e1", "shop/a")])
        assert (other.queued, other.duplicates) == (1, 0)  # was a duplicate of src's
        full = await indexer.accept("src", [pushed("e2", "shop/b")])
        assert (full.ignored, full.duplicates) == (1, 0)  # two repositories wait already
        again = await indexer.accept("src", [pushed("e2", "shop/b")])
        assert (again.ignored, again.duplicates) == (1, 0)  # judged again, not a duplicate
        retried = await indexer.accept("src", [pushed("e1", "shop/a")])
        assert (retried.queued, retried.duplicates) == (0, 1)
        twice = await indexer.accept("src", [pushed("e3", "shop/a"), pushed("e3", "shop/a")])
        assert (twice.queued, twice.duplicates) == (1, 1)
    finally:
        await indexer.stop()
