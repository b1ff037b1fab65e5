"""Reads that must see the writer's open group: two repositories holding the same signed image,
crawled one after the other in one group, on SQLite and PostgreSQL. The second finds the
image's signature and SBOM manifests known, their documents recorded and a refused document's
reason, all written by the first and not committed yet (the reads go to a connection of their
own, and see them only as the group's units noted them): nothing is fetched twice."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.app.catalog_service import CatalogService
from catalog.index.run import index_registry
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import IndexErrorRecord, Sbom, UndecodableDocument
from catalog.store.registries import RegistrySpec
from tests.harness.faultproxy import FaultProxy
from tests.harness.images import build_artifact, build_image
from tests.hostile.test_documents import _cosign_sig
from tests.hostile.test_undecodable import NESTED, SPDX, gets_of
from tests.pushing import push_built
from tests.signing import signature_tag


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.usefixtures("one_group")
async def test_a_repository_sees_what_the_one_before_recorded_in_the_open_group(
    proxied: FaultProxy, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    rng = random.Random("group-reads")
    subject = build_image(rng, layers=1, layer_size=512)
    sbom = build_artifact(subject, "application/spdx+json", SPDX, "application/spdx+json")
    sig = _cosign_sig(NESTED)
    async with RegistryClient(proxied.host) as client:
        for repository in ("a/app", "b/app"):
            await push_built(client, repository, subject, "v1")
            await push_built(client, repository, sbom)
            await push_built(client, repository, sig, signature_tag(subject.digest))
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("group_reads")
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("r", proxied.host))

    # One repository at a time: the second's reads queue behind the first's recording, in
    # the writer's group, not committed before the crawl's end (``one_group``).
    stats = await index_registry(sessions, "r", catalog.secrets, concurrency=1)

    assert gets_of(proxied, sbom) == 2  # its manifest and its layer, for "a/app" alone
    # Its manifest by the cosign tag (in each repository: a tag is resolved), its layer once.
    assert proxied.count("GET", f"/blobs/{sig.layers[0].digest}$") == 1
    with sessions() as session:
        assert session.scalar(select(Sbom.attachment_digest)) == sbom.digest
        assert set(session.scalars(select(UndecodableDocument.digest))) == {sig.digest}
        errors = session.execute(
            select(IndexErrorRecord.repository, IndexErrorRecord.reason)
            .where(IndexErrorRecord.reference == sig.digest)
            .order_by(IndexErrorRecord.repository)
        ).all()
    engine.dispose()
    assert stats.errors == 2
    assert [repository for repository, _ in errors] == ["a/app", "b/app"]
    assert "nested deeper than 64 levels" in errors[0][1]
    assert errors[1][1].endswith("(as when first read; not fetched again)")
