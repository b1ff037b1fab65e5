"""A document that cannot be decoded is fetched and decoded once: its attachment's digest is
recorded as undecodable, a re-index reports the recorded reason again without a request for it,
and a changed document (a new digest) is tried. Counted at a real registry, through the fault
proxy every request of the crawl passes. Before: every re-index fetched and decoded again each
attachment found by a cosign tag (``sha256-….sig``, ``.att``, ``.sbom``) that had no document
recorded (a 30 MiB JSON bomb cost its download and its refusal on every run)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from sqlalchemy import select

from catalog.app.catalog_service import CatalogService
from catalog.oci import mediatypes as mt
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import IndexErrorRecord, Sbom, UndecodableDocument
from catalog.store.registries import RegistrySpec
from tests.harness.faultproxy import FaultProxy
from tests.harness.images import BuiltManifest, build_artifact, build_image
from tests.hostile.test_documents import _cosign_sig
from tests.pushing import push_built
from tests.signing import signature_tag

NESTED = b"[" * 200_000 + b"]" * 200_000
SPDX = b'{"spdxVersion": "SPDX-2.3", "name": "x", "packages": []}'


def gets_of(proxy: FaultProxy, built: BuiltManifest) -> int:
    """Requests for the attachment's manifest or its layers (the documents)."""
    digests = [built.digest, *(blob.digest for blob in built.layers)]
    return sum(proxy.count("GET", f"/(manifests|blobs)/{d}$") for d in digests)


async def test_a_document_refused_once_is_not_fetched_again(
    proxied: FaultProxy, tmp_path: Path
) -> None:
    rng = random.Random("undecodable")
    subject = build_image(rng, layers=1, layer_size=512)
    bundle = build_artifact(subject, mt.SIGSTORE_BUNDLE_V03, NESTED, mt.SIGSTORE_BUNDLE_V03)
    good = build_artifact(subject, "application/spdx+json", SPDX, "application/spdx+json")
    sig = _cosign_sig(NESTED)  # found by its tag on every run
    async with RegistryClient(proxied.host) as client:
        await push_built(client, "app", subject, "v1")
        await push_built(client, "app", bundle)
        await push_built(client, "app", good)
        await push_built(client, "app", sig, signature_tag(subject.digest))

    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    catalog = CatalogService(sessions)
    await asyncio.to_thread(catalog.add_registry, RegistrySpec("r", proxied.host))

    def errors_on(digest: str) -> list[str]:
        with sessions() as session:
            return list(
                session.scalars(
                    select(IndexErrorRecord.reason)
                    .where(IndexErrorRecord.reference == digest)
                    .order_by(IndexErrorRecord.id)
                )
            )

    # First run: fetched, refused, recorded as undecodable; the good SBOM beside it recorded.
    proxied.reset_counters()
    first = await catalog.index("r")
    assert gets_of(proxied, bundle) >= 2  # its manifest and its layer
    assert gets_of(proxied, sig) >= 2
    assert first.errors == 2
    with sessions() as session:
        refused = {r.digest: r.reason for r in session.scalars(select(UndecodableDocument))}
        assert set(refused) == {bundle.digest, sig.digest}
        assert all("nested deeper than 64 levels" in reason for reason in refused.values())
        assert session.scalar(select(Sbom.attachment_digest)) == good.digest

    # Re-indexed: no request for the signature its tag names, its error reported again.
    for _ in range(2):
        proxied.reset_counters()
        again = await catalog.index("r")
        print(f"measured: re-index requests {proxied.requests}")
        assert gets_of(proxied, sig) == 0
        assert gets_of(proxied, bundle) == 0
        assert again.errors == 1
    reasons = errors_on(sig.digest)
    assert len(reasons) == 3
    assert "nested deeper than 64 levels" in reasons[-1]
    assert reasons[-1].endswith("(as when first read; not fetched again)")

    # A changed document is a new digest: fetched and decoded (and refused on its own merits).
    fixed = build_artifact(subject, mt.SIGSTORE_BUNDLE_V03, b"{}", mt.SIGSTORE_BUNDLE_V03)
    async with RegistryClient(proxied.host) as client:
        await push_built(client, "app", fixed)
    proxied.reset_counters()
    changed = await catalog.index("r")
    assert gets_of(proxied, fixed) >= 2
    assert gets_of(proxied, bundle) == gets_of(proxied, sig) == 0  # the index changed, not they
    assert changed.errors == 2  # the signature again, and the new one on its own merits
    assert "missing 'mediaType'" in errors_on(fixed.digest)[0]
    with sessions() as session:
        assert set(session.scalars(select(UndecodableDocument.digest))) == {
            bundle.digest,
            sig.digest,
            fixed.digest,
        }
    engine.dispose()


async def test_a_layer_the_registry_failed_to_send_is_tried_again(
    proxied: FaultProxy, tmp_path: Path
) -> None:
    """Not the document's fault: nothing recorded, the next run fetches it and decodes it."""
    rng = random.Random("unfetched")
    subject = build_image(rng, layers=1, layer_size=512)
    good = build_artifact(subject, "application/spdx+json", SPDX, "application/spdx+json")
    sbom_tag = signature_tag(subject.digest).removesuffix(".sig") + ".sbom"  # cosign's SBOM tag
    async with RegistryClient(proxied.host) as client:
        await push_built(client, "app", subject, "v1")
        await push_built(client, "app", good, sbom_tag)
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    catalog = CatalogService(sessions)
    await asyncio.to_thread(catalog.add_registry, RegistrySpec("r", proxied.host))

    layer = good.blobs[-1].digest
    proxied.fail(10, 404, match=f"/blobs/{layer}$", method="GET")
    first = await catalog.index("r")
    assert first.errors == 1
    proxied.clear()
    proxied.reset_counters()
    await catalog.index("r")
    assert proxied.count("GET", f"/blobs/{layer}$") == 1
    with sessions() as session:
        assert session.scalar(select(Sbom.attachment_digest)) == good.digest
        assert session.scalars(select(UndecodableDocument)).all() == []
    engine.dispose()
