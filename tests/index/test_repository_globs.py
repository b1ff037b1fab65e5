"""A registry's ``repositories`` globs choose what is indexed, with the glob meaning policies and
rules use: ``acme/*`` is the repositories directly under ``acme``, ``acme/**`` all below it."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from catalog.app.catalog_service import CatalogService
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec, update_registry
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built


async def _catalog(
    registry: RunningRegistry, tmp_path: Path, rng: random.Random, repositories: tuple[str, ...]
) -> tuple[Engine, CatalogService, Callable[..., None]]:
    """An image in each of ``repositories``, a catalog of the registry, and how to choose its
    globs (``choose(*globs)``)."""
    async with RegistryClient(registry.host) as client:
        for repository in repositories:
            await push_built(client, repository, build_image(rng, layers=1), "v1")
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    sessions = session_factory(engine)

    def choose(*globs: str) -> None:
        with sessions.begin() as session:
            update_registry(session, RegistrySpec("local", registry.host, repositories=globs))

    return engine, CatalogService(sessions), choose


async def test_star_is_one_segment_and_double_star_any_depth(
    fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    repositories = ("acme/api", "acme/team/api", "other/api")
    engine, service, choose = await _catalog(fresh_registry, tmp_path, rng, repositories)

    def indexed() -> list[str]:
        return sorted(r.name for r in service.list_repositories("local").items if not r.gone_at)

    choose("acme/*")
    await service.index("local")
    assert indexed() == ["acme/api"]  # fnmatch took acme/team/api too
    choose("acme/**")
    await service.index("local")
    assert indexed() == ["acme/api", "acme/team/api"]
    engine.dispose()


async def test_a_repository_chosen_again_is_back_with_its_row(
    fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    """Left out by the filter, a repository is gone; chosen again, the same row (its first
    sighting kept) is live again and stamped indexed: its id is read ahead of a crawl only
    while it is live."""
    engine, service, choose = await _catalog(
        fresh_registry, tmp_path, rng, ("acme/api", "other/api")
    )

    def rows() -> dict[str, tuple[object, bool, object]]:
        return {
            r.name: (r.first_seen, r.gone_at is None, r.last_indexed_at)
            for r in service.list_repositories("local").items
        }

    choose()
    await service.index("local")
    first = rows()
    assert [(name, live) for name, (_, live, _) in sorted(first.items())] == [
        ("acme/api", True),
        ("other/api", True),
    ]
    choose("acme/*")
    await service.index("local")
    assert rows()["other/api"][:2] == (first["other/api"][0], False)
    choose()
    await service.index("local")
    again = rows()
    assert {name: row[:2] for name, row in again.items()} == {
        name: (seen, True) for name, (seen, _, _) in first.items()
    }
    assert again["other/api"][2] != first["other/api"][2]  # indexed again
    engine.dispose()
