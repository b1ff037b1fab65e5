"""The registry client against a real Distribution registry."""

from __future__ import annotations

import json
import random
import time

import pytest

from catalog.oci import mediatypes as mt
from catalog.oci.digest import Digest
from catalog.oci.errors import (
    BlobUnknown,
    DigestMismatch,
    InvalidManifest,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
    RegistryUnavailable,
    TooManyRequests,
)
from catalog.oci.manifest import parse_manifest
from tests.conftest import ClientFactory
from tests.harness.faultproxy import FaultProxy, registry_error
from tests.harness.images import build_artifact, build_image, build_multiplatform, random_layer
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built


async def test_push_and_read_back_byte_for_byte(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(registry.host)
    await client.ping()
    index = build_multiplatform(rng)
    await push_built(client, "rt/multi", index, "v1")
    got = await client.get_manifest("rt/multi", "v1")
    assert got.raw == index.raw
    assert str(got.digest) == index.digest
    assert [str(d.platform) for d in got.manifests] == ["linux/amd64", "linux/arm64/v8"]
    head = await client.head_manifest("rt/multi", "v1")
    assert head is not None
    assert str(head.digest) == index.digest
    assert head.size == index.size
    for child in index.children:
        again = await client.get_manifest("rt/multi", child.digest)
        assert again.raw == child.raw
        for blob in child.blobs:
            data = await client.get_blob("rt/multi", Digest.parse(blob.digest), blob.size)
            assert data == blob.data
    assert [t async for t in client.tags("rt/multi")] == ["v1"]


async def test_docker_schema2_round_trip(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(registry.host)
    image = build_image(rng, docker=True, layers=2)
    await push_built(client, "rt/docker", image, "latest")
    got = await client.get_manifest("rt/docker", "latest")
    assert got.media_type == mt.DOCKER_MANIFEST
    assert got.raw == image.raw


async def test_typed_errors_carry_the_registry_message(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(registry.host)
    await push_built(client, "err/repo", build_image(rng, layers=1), "v1")
    with pytest.raises(ManifestUnknown, match="MANIFEST_UNKNOWN"):
        await client.get_manifest("err/repo", "nope")
    with pytest.raises(NameUnknown, match="repository name not known"):
        _ = [t async for t in client.tags("err/absent")]
    with pytest.raises(BlobUnknown):
        await client.get_blob("err/repo", Digest.of(b"absent"))
    assert await client.head_manifest("err/repo", "nope") is None
    assert await client.head_blob("err/repo", Digest.of(b"absent")) is None


async def test_delete_by_digest_removes_the_manifest(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(registry.host)
    m = await push_built(client, "del/repo", build_image(rng, layers=1), "v1")
    await client.delete_manifest("del/repo", m.digest)
    with pytest.raises(ManifestUnknown):
        await client.get_manifest("del/repo", str(m.digest))


async def test_catalog_paginates_past_100_repositories(
    fresh_registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(fresh_registry.host)
    image = build_image(rng, layers=1, layer_size=1024)
    first = await push_built(client, "many/r000", image, "v1")
    names = [f"many/r{i:03d}" for i in range(1, 130)]
    for name in names:
        for blob in first.blobs():
            assert await client.mount_blob(name, blob.digest, "many/r000")
        await client.put_manifest(name, first, "v1")
    listed = [r async for r in client.catalog(page_size=50)]
    assert listed == ["many/r000", *names]


async def test_chunked_upload_and_range_resume(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(registry.host, chunk_size=256 * 1024)
    layer = random_layer(rng, 1_500_000)
    digest = Digest.parse(layer.digest)

    async def stream() -> object:
        for i in range(0, layer.size, 100_000):
            yield layer.data[i : i + 100_000]

    await client.push_blob("chunked/repo", digest, stream(), layer.size)  # type: ignore[arg-type]
    assert await client.head_blob("chunked/repo", digest) == layer.size
    assert await client.get_blob("chunked/repo", digest, layer.size) == layer.data


async def test_mount_unknown_blob_is_not_mounted(
    registry: RunningRegistry, make_client: ClientFactory
) -> None:
    client = make_client(registry.host)
    assert not await client.mount_blob("mount/dst", Digest.of(b"never pushed"), "mount/src")


async def test_bad_content_is_refused_before_upload(
    registry: RunningRegistry, make_client: ClientFactory
) -> None:
    client = make_client(registry.host)
    with pytest.raises(DigestMismatch):
        await client.push_blob("bad/repo", Digest.of(b"right"), b"wrong")
    assert await client.head_blob("bad/repo", Digest.of(b"right")) is None


async def test_oversized_manifest_is_refused_while_reading(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(registry.host)
    image = build_image(rng, layers=40, layer_size=256, annotations={"pad": "x" * 3000})
    await push_built(client, "big/repo", image, "v1")
    small = make_client(registry.host, manifest_limit=image.size - 1)
    with pytest.raises(ManifestTooLarge, match=f"{image.size - 1}-byte limit"):
        await small.get_manifest("big/repo", "v1")
    assert (await make_client(registry.host).get_manifest("big/repo", "v1")).raw == image.raw


async def test_fallback_referrers_round_trip_merges_never_clobbers(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(registry.host)
    repo = "refs/app"
    subject = await push_built(client, repo, build_image(rng, layers=1), "v1")
    # Someone else's entry already in the fallback index must survive our pushes.
    other = build_image(rng, layers=1)
    await push_built(client, repo, other)
    foreign = build_artifact(other, "application/x-foreign", b"f", "application/octet-stream")
    await push_built(client, repo, foreign)
    foreign_desc = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": foreign.digest,
        "size": foreign.size,
        "artifactType": "application/x-foreign",
    }
    existing = json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [foreign_desc]}
    ).encode()
    await client.put_manifest(repo, parse_manifest(existing), subject.digest.fallback_tag())

    built_subject = build_image(rng, layers=1)
    built_subject.raw, built_subject.digest = subject.raw, str(subject.digest)
    sbom = build_artifact(built_subject, "application/spdx+json", b"{}", "application/spdx+json")
    sig = build_artifact(
        built_subject, mt.SIGSTORE_BUNDLE_V03, b"{}", mt.SIGSTORE_BUNDLE_V03, {"k": "v"}
    )
    await push_built(client, repo, sbom)
    await push_built(client, repo, sig)
    await push_built(client, repo, sig)  # pushing twice adds no duplicate

    found = await client.referrers(repo, subject.digest)
    assert found.scheme == "fallback-tag"
    assert client.has_referrers_api is False
    assert [str(d.digest) for d in found.descriptors] == [foreign.digest, sbom.digest, sig.digest]
    by_digest = {str(d.digest): d for d in found.descriptors}
    assert by_digest[sig.digest].annotations == {"k": "v"}
    assert by_digest[sbom.digest].artifact_type == "application/spdx+json"
    only = await client.referrers(repo, subject.digest, mt.SIGSTORE_BUNDLE_V03)
    assert [str(d.digest) for d in only.descriptors] == [sig.digest]
    none = await client.referrers(repo, Digest.of(b"no such subject"))
    assert none.descriptors == []


async def test_a_fallback_tag_holding_something_else_is_not_written_over(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(registry.host)
    repo = "refs/taken"
    subject = await push_built(client, repo, build_image(rng, layers=1), "v1")
    # Someone tagged an image with the subject's fallback tag: a referrer's push must not
    # replace it with an index (the spec's reader takes such a tag for "no referrers").
    squatter = await push_built(client, repo, build_image(rng, layers=1))
    tag = subject.digest.fallback_tag()
    await client.put_manifest(repo, squatter, tag)

    built_subject = build_image(rng, layers=1)
    built_subject.raw, built_subject.digest = subject.raw, str(subject.digest)
    sbom = build_artifact(built_subject, "application/spdx+json", b"{}", "application/spdx+json")
    with pytest.raises(InvalidManifest, match=f"the tag {tag} holds a .*not written over"):
        await push_built(client, repo, sbom)

    assert (await client.get_manifest(repo, tag)).digest == squatter.digest
    found = await client.referrers(repo, subject.digest)  # read as the spec says: none
    assert (found.scheme, found.descriptors) == ("fallback-tag", [])


async def test_retries_429_honouring_retry_after(
    proxy: FaultProxy, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(proxy.host)
    await push_built(client, "retry/a", build_image(rng, layers=1), "v1")
    proxy.fail(
        2,
        429,
        headers={"Retry-After": "1"},
        body=registry_error("TOOMANYREQUESTS", "slow down"),
        match=r"/manifests/v1$",
        method="GET",
    )
    started = time.monotonic()
    await client.get_manifest("retry/a", "v1")
    assert time.monotonic() - started >= 1.9  # waited what Retry-After asked, twice
    assert proxy.count("GET", r"/manifests/v1$") == 3


async def test_retries_503_with_backoff_then_gives_up(
    proxy: FaultProxy, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(proxy.host)
    await push_built(client, "retry/b", build_image(rng, layers=1), "v1")
    proxy.fail(3, 503, match=r"/manifests/v1$")
    await client.get_manifest("retry/b", "v1")
    proxy.fail(10, 429, body=registry_error("TOOMANYREQUESTS", "go away"), match="/manifests/v1$")
    with pytest.raises(TooManyRequests, match="go away"):
        await client.get_manifest("retry/b", "v1")
    proxy.clear()


async def test_connection_resets_are_retried_and_bounded(
    proxy: FaultProxy, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(proxy.host)
    image = await push_built(client, "retry/c", build_image(rng, layers=1), "v1")
    proxy.reset(2, match=r"/blobs/")
    blob = image.layers[0]
    assert len(await client.get_blob("retry/c", blob.digest, blob.size)) == blob.size
    proxy.reset(50, match=r"/manifests/")
    with pytest.raises(RegistryUnavailable, match="unreachable after 4 attempt"):
        await client.get_manifest("retry/c", "v1")
    proxy.clear()


async def test_corrupted_manifest_and_blob_are_detected(
    proxy: FaultProxy, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(proxy.host)
    image = await push_built(client, "corrupt/a", build_image(rng, layers=1), "v1")
    proxy.corrupt(1, match=r"/manifests/sha256:")
    with pytest.raises(DigestMismatch, match="manifest digest mismatch"):
        await client.get_manifest("corrupt/a", str(image.digest))
    layer = image.layers[0]
    proxy.corrupt(1, match=r"/blobs/")
    with pytest.raises(DigestMismatch):
        await client.get_blob("corrupt/a", layer.digest, layer.size)


async def test_corrupted_blob_in_transit_writes_nothing(
    proxy: FaultProxy, registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    source = make_client(proxy.host)
    dest = make_client(registry.host, chunk_size=64 * 1024)
    image = await push_built(
        source, "corrupt/src", build_image(rng, layers=1, layer_size=300_000), "v1"
    )
    layer = image.layers[0]
    proxy.corrupt(1, match=r"/blobs/")
    with pytest.raises(DigestMismatch):
        await dest.push_blob(
            "corrupt/dst", layer.digest, source.blob_chunks("corrupt/src", layer.digest, layer.size)
        )
    assert await dest.head_blob("corrupt/dst", layer.digest) is None
