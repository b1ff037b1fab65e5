"""The catalog end to end: a real registry, indexed through a real gRPC channel."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.api.v1 import catalog_pb2 as pb
from catalog.api.v1 import catalog_pb2_grpc
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from catalog.index import crawler
from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from tests.harness.faultproxy import FaultProxy
from tests.harness.images import BuiltManifest, build_artifact, build_image
from tests.harness.registry import RunningRegistry
from tests.index.conftest import CDX_PURL, SLSA_BUILDER, SLSA_SOURCE, SPDX_PURL, Corpus, populate
from tests.pushing import push_built
from tests.signing import push_signature

if TYPE_CHECKING:
    Stub = catalog_pb2_grpc.CatalogServiceAsyncStub


@pytest.fixture
async def served(
    source: tuple[RunningRegistry, FaultProxy], tmp_path: Path
) -> AsyncIterator[tuple[Stub, Server]]:
    _, proxy = source
    config = ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[RegistryConfig(name="local", host=proxy.host)],
    )
    service = Server(config)
    await service.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel), service
    await service.stop()


async def index(stub: Stub) -> pb.IndexProgress:
    last = None
    async for message in stub.IndexRegistry(pb.IndexRegistryRequest(name="registries/local")):
        last = message.progress
    assert last is not None
    assert last.done
    return last


async def test_index_and_answer_provenance_questions(
    source: tuple[RunningRegistry, FaultProxy],
    served: tuple[Stub, Server],
    fixtures_dir: Path,
    rng: random.Random,
) -> None:
    _, proxy = source
    stub, _ = served
    corpus: Corpus = await populate(proxy.host, fixtures_dir, rng)
    progress = await index(stub)
    assert progress.stats.errors == 0, await stub.ListIndexErrors(
        pb.ListIndexErrorsRequest(parent="registries/local")
    )

    # The fixture's SLSA provenance, through its cosign .att, by tag.
    answer = await stub.ResolveArtifact(
        pb.ResolveArtifactRequest(reference=f"{proxy.host}/slsa/app:v1")
    )
    artifact = answer.artifact
    assert artifact.digest == corpus.slsa_index
    provenance = [a.provenance for a in artifact.attestations if a.HasField("provenance")]
    assert [p.builder_id for p in provenance] == [SLSA_BUILDER]
    assert provenance[0].source_uri == SLSA_SOURCE
    assert provenance[0].source_digest == "d37a7f740ee7404914456f24dcd90e865a0509e8"
    assert [(s.identity, s.issuer) for s in artifact.signatures] == [
        (
            "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
            "generator_container_slsa3.yml@refs/tags/v1.10.0",
            "https://token.actions.githubusercontent.com",
        )
    ]
    assert [p.platform.architecture for p in artifact.platform_manifests] == ["amd64"]
    schemes = {(a.kind, a.scheme) for a in artifact.attachments}
    assert (pb.ATTACHMENT_KIND_ATTESTATION, pb.ATTACHMENT_SCHEME_COSIGN_TAG) in schemes

    # Package queries: a purl from each SBOM fixture finds its image and repository:tag.
    for purl, tag in [(SPDX_PURL, "1.0"), (CDX_PURL, "1.1")]:
        found = await stub.SearchArtifactsByPackage(pb.SearchArtifactsByPackageRequest(purl=purl))
        digest = corpus.images[f"shop/api:{tag}"]
        assert [m.artifact for m in found.matches] == [f"artifacts/{digest}"]
        locations = [(loc.repository, list(loc.tags)) for loc in found.matches[0].locations]
        assert locations == [("registries/local/repositories/shop%2Fapi", [tag])]
    versionless = await stub.SearchArtifactsByPackage(
        pb.SearchArtifactsByPackageRequest(purl="pkg:deb/debian/package-2")
    )
    assert len(versionless.matches) == 1

    # Cosign .sig signatures by tag scheme, decoded with the digest they sign.
    image = corpus.images["shop/api:1.2"]
    signed = (await stub.GetArtifact(pb.GetArtifactRequest(name=f"artifacts/{image}"))).artifact
    assert [s.signed_digests for s in signed.signatures] == [[image]]
    assert signed.signatures[0].format == "cosign"

    # SBOM summary by fallback-tag referrer.
    first = corpus.images["shop/api:1.0"]
    with_sbom = (await stub.GetArtifact(pb.GetArtifactRequest(name=f"artifacts/{first}"))).artifact
    assert [(s.format, s.package_count) for s in with_sbom.sboms] == [("spdx", 3)]
    referrers = await stub.ListReferrers(
        pb.ListReferrersRequest(parent=f"artifacts/{first}", artifact_type="application/spdx+json")
    )
    assert [(r.digest, r.scheme) for r in referrers.referrers] == [
        (corpus.sboms[first], pb.ATTACHMENT_SCHEME_FALLBACK_TAG)
    ]

    # BuildKit's in-index attestation hangs off the platform image it describes.
    web = (
        await stub.GetArtifact(pb.GetArtifactRequest(name=f"artifacts/{corpus.buildkit_image}"))
    ).artifact
    assert [(a.scheme, a.kind) for a in web.attachments] == [
        (pb.ATTACHMENT_SCHEME_IN_INDEX, pb.ATTACHMENT_KIND_ATTESTATION)
    ]
    assert [a.predicate_type for a in web.attestations] == ["https://slsa.dev/provenance/v0.2"]


# One repository per batch too: each repository's state before must be its own.
@pytest.mark.parametrize("before_batch", [1, crawler.BEFORE_BATCH])
async def test_reindex_is_incremental_and_records_changes(
    source: tuple[RunningRegistry, FaultProxy],
    served: tuple[Stub, Server],
    fixtures_dir: Path,
    rng: random.Random,
    monkeypatch: pytest.MonkeyPatch,
    before_batch: int,
) -> None:
    monkeypatch.setattr(crawler, "BEFORE_BATCH", before_batch)
    registry, proxy = source
    stub, _ = served
    corpus = await populate(proxy.host, fixtures_dir, rng)
    await index(stub)

    proxy.reset_counters()
    again = await index(stub)
    assert again.stats.errors == 0
    manifests = [e for e in proxy.events if "/manifests/" in e.path]
    # Unchanged: no manifest body. Distribution's ETag is the digest, so after the first answers
    # the crawl asks with If-None-Match (304) instead of HEAD.
    assert all(e.method == "HEAD" or e.status == 304 for e in manifests), manifests
    assert any(e.status == 304 for e in manifests)
    assert again.stats.tags_changed == 0
    # Every document was recorded the first time: none is fetched again.
    assert not [e for e in proxy.events if "/blobs/" in e.path]

    # Retag 1.0 to 1.1's image: one tag event; delete 1.2's image: its tags are gone.
    async with RegistryClient(registry.host) as client:
        moved = await client.get_manifest("shop/api", "1.1")
        await client.put_manifest("shop/api", moved, "1.0")
        await client.delete_manifest("shop/api", Digest.parse(corpus.images["shop/api:1.2"]))
    proxy.reset_counters()
    changed = await index(stub)
    # The moved tag costs one request (a conditional GET answered with the manifest), not a
    # HEAD and then a GET.
    assert [
        (e.method, e.status) for e in proxy.events if e.path.endswith("/shop/api/manifests/1.0")
    ] == [("GET", 200)]
    assert changed.stats.tags_gone == 1
    assert changed.stats.tags_changed == 2  # 1.0 moved, 1.2 gone

    history = await stub.ListTagEvents(
        pb.ListTagEventsRequest(parent="registries/local/repositories/shop%2Fapi/tags/1.0")
    )
    pairs = [(e.old_digest, e.new_digest) for e in history.tag_events]
    assert pairs == [  # newest first
        (corpus.images["shop/api:1.0"], corpus.images["shop/api:1.1"]),
        ("", corpus.images["shop/api:1.0"]),
    ]
    tags = await stub.ListTags(
        pb.ListTagsRequest(parent="registries/local/repositories/shop%2Fapi", show_gone=True)
    )
    gone = {t.tag for t in tags.tags if t.gone}
    assert gone == {"1.2"}
    deleted = (
        await stub.GetArtifact(
            pb.GetArtifactRequest(name=f"artifacts/{corpus.images['shop/api:1.2']}")
        )
    ).artifact
    assert all(loc.gone for loc in deleted.locations)


async def test_attachments_added_later_are_picked_up(
    source: tuple[RunningRegistry, FaultProxy],
    served: tuple[Stub, Server],
    fixtures_dir: Path,
    rng: random.Random,
) -> None:
    _, proxy = source
    stub, _ = served
    corpus = await populate(proxy.host, fixtures_dir, rng)
    await index(stub)
    image = corpus.images["shop/api:1.2"]
    async with RegistryClient(proxy.host) as client:
        subject = await client.get_manifest("shop/api", image)
        built = BuiltManifest(subject.media_type, subject.raw, image, subject.size, [], [], None)
        cdx = (fixtures_dir / "sbom" / "syft-image.cdx-1.7.json").read_bytes()
        late = build_artifact(
            built, "application/vnd.cyclonedx+json", cdx, "application/vnd.cyclonedx+json"
        )
        await push_built(client, "shop/api", late)
    await index(stub)
    artifact = (await stub.GetArtifact(pb.GetArtifactRequest(name=f"artifacts/{image}"))).artifact
    assert [s.format for s in artifact.sboms] == ["cyclonedx"]
    assert late.digest in {a.digest for a in artifact.attachments}


async def test_a_new_signature_of_an_unchanged_image_is_picked_up(
    source: tuple[RunningRegistry, FaultProxy],
    served: tuple[Stub, Server],
    fixtures_dir: Path,
    rng: random.Random,
) -> None:
    # The image's tag does not move; only its cosign .sig tag does (a new key signed it).
    _, proxy = source
    stub, _ = served
    corpus = await populate(proxy.host, fixtures_dir, rng)
    await index(stub)
    image = corpus.images["shop/api:1.1"]
    async with RegistryClient(proxy.host) as client:
        signature = await push_signature(
            client, "shop/api", image, ec.generate_private_key(ec.SECP256R1())
        )
    proxy.reset_counters()
    again = await index(stub)
    assert again.stats.errors == 0
    [moved] = [
        e for e in proxy.events if "/manifests/" in e.path and (e.method, e.status) == ("GET", 200)
    ]
    assert moved.path.endswith(".sig")
    artifact = (await stub.GetArtifact(pb.GetArtifactRequest(name=f"artifacts/{image}"))).artifact
    found = {a.digest: a.kind for a in artifact.attachments}
    assert signature.digest != corpus.signatures[image]
    assert found[signature.digest] == pb.ATTACHMENT_KIND_SIGNATURE
    # Its document is new: read (the payload blob), where the unchanged ones are not.
    assert [e for e in proxy.events if "/blobs/" in e.path]


async def test_one_bad_document_does_not_stop_the_crawl(
    source: tuple[RunningRegistry, FaultProxy],
    served: tuple[Stub, Server],
    rng: random.Random,
) -> None:
    _, proxy = source
    stub, _ = served
    async with RegistryClient(proxy.host) as client:
        image = build_image(rng, layers=1)
        await push_built(client, "bad/app", image, "v1")
        broken = build_artifact(
            image, "application/spdx+json", b"{not json", "application/spdx+json"
        )
        await push_built(client, "bad/app", broken)
        good = build_image(rng, layers=1)
        await push_built(client, "bad/app", good, "v2")
    progress = await index(stub)
    assert progress.stats.errors == 1
    errors = await stub.ListIndexErrors(pb.ListIndexErrorsRequest(parent="registries/local"))
    assert len(errors.index_errors) == 1
    assert "layer" in errors.index_errors[0].reason
    answer = await stub.ResolveArtifact(
        pb.ResolveArtifactRequest(reference=f"{proxy.host}/bad/app:v2")
    )
    assert answer.artifact.digest == good.digest


async def test_a_registry_that_is_down_is_unavailable(tmp_path: Path) -> None:
    from tests.harness.ports import free_port

    config = ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[RegistryConfig(name="down", host=f"127.0.0.1:{free_port()}")],
    )
    service = Server(config)
    await service.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in stub.IndexRegistry(pb.IndexRegistryRequest(name="registries/down")):
                    pass
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "unreachable" in (caught.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await stub.GetArtifact(pb.GetArtifactRequest(name="artifacts/sha256:nothex"))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await service.stop()
