"""Commands read every registry of the catalog, not its first page: with 1,001 registries
``registry list`` shows them all, and a host known only as the 1,001st is still found."""

from __future__ import annotations

import json
from pathlib import Path

from catalog.app.catalog_service import CatalogService
from catalog.cli.hosts import all_registries
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec, create_registry
from tests.cli.test_catalog_cli import ok, run

COUNT = 1001  # one past the most a page holds


def catalog_of(path: Path, count: int) -> CatalogService:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:  # one transaction: a second, not a thousand commits
        for n in range(count):
            create_registry(session, RegistrySpec(f"r{n:04d}", f"registry-{n}.example:5000"))
    return CatalogService(sessions)


def test_paging_through_the_registries(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path / "catalog.db", 5)
    assert [v.name for v in all_registries(catalog, page=2)] == [f"r{n:04d}" for n in range(5)]
    assert len(all_registries(catalog, page=5)) == 5


def test_commands_see_the_registries_past_the_first_page(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    catalog_of(db, COUNT)
    listed = json.loads(ok(run("registry", "list", "-o", "json", db=db)))
    assert len(listed) == COUNT
    assert listed[-1]["name"] == f"r{COUNT - 1:04d}"
    # The last registry's host is known: the lookup says which registry it is, not "add it".
    done = run("tags", f"registry-{COUNT - 1}.example:5000/shop/app", "--catalog", db=db)
    assert done.returncode == 3, done.stderr
    assert f"no repository 'shop/app' in registry 'r{COUNT - 1:04d}'" in done.stderr
