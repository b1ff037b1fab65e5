"""A crawl on SQLite writes its SBOMs' package rows after each repository's unit, outside its
savepoint (``store.grouped``): when the database fails those, it is not one repository's
failure to record and go past, but the database's, as a failed commit is. The crawl stops with
it; what earlier groups committed stays, and nothing of the failed group is kept."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from catalog.app.catalog_service import CatalogService
from catalog.index.run import index_registry
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.grouped import GroupFailed
from catalog.store.models import Repository, Sbom, SbomPackage
from catalog.store.registries import RegistrySpec
from tests.harness.faultproxy import FaultProxy
from tests.harness.images import build_artifact, build_image
from tests.pushing import push_built


def _spdx(name: str) -> bytes:
    """Small enough to be decoded ahead (its rows within 8 times its size, ``index.layers``)."""
    packages = [
        {"name": f"{name}-lib{i}", "versionInfo": f"1.{i}", "comment": "x" * 100} for i in range(5)
    ]
    return json.dumps({"spdxVersion": "SPDX-2.3", "name": name, "packages": packages}).encode()


async def _push(host: str, repository: str, seed: int) -> None:
    subject = build_image(random.Random(seed), layers=1, layer_size=256)
    sbom = build_artifact(
        subject, "application/spdx+json", _spdx(repository), "application/spdx+json"
    )
    async with RegistryClient(host) as client:
        await push_built(client, repository, subject, "v1")
        await push_built(client, repository, sbom)


async def test_package_rows_the_database_fails_after_a_unit_stop_the_crawl(
    proxied: FaultProxy, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("r", proxied.host))
    await _push(proxied.host, "a/app", 1)
    await index_registry(sessions, "r", catalog.secrets, concurrency=1)

    await _push(proxied.host, "b/app", 2)
    with engine.begin() as connection:  # the database now fails every package row
        connection.execute(
            text(
                "CREATE TRIGGER failing BEFORE INSERT ON sbom_packages"
                " BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END"
            )
        )
    with pytest.raises(GroupFailed, match="database or disk is full"):
        await index_registry(sessions, "r", catalog.secrets, concurrency=1)

    with sessions() as session:
        assert set(session.scalars(select(Repository.name))) == {"a/app"}
        assert session.scalar(select(func.count()).select_from(Sbom)) == 1
        assert session.scalar(select(func.count()).select_from(SbomPackage)) == 5
    engine.dispose()
