"""Built images are self-consistent and the real registry accepts them byte for byte."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import images
from tests.harness.images import (
    Blob,
    BuiltManifest,
    build_artifact,
    build_image,
    build_index,
    build_multiplatform,
    random_layer,
    referrers_tag,
)
from tests.harness.regclient import RegistryClient
from tests.harness.registry import RunningRegistry, run_registry


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path) as running:
        yield running


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check(manifest: BuiltManifest) -> None:
    assert manifest.digest == _sha(manifest.raw)
    assert manifest.size == len(manifest.raw)
    assert manifest.raw != json.dumps(manifest.json()).encode()  # not canonical on purpose
    doc = manifest.json()
    assert doc["mediaType"] == manifest.media_type
    for blob in manifest.blobs:
        assert blob.digest == _sha(blob.data)
        assert blob.size == len(blob.data)
    if manifest.is_index:
        assert [m["digest"] for m in doc["manifests"]] == [c.digest for c in manifest.children]
    else:
        assert doc["config"]["digest"] == manifest.blobs[0].digest
        assert [la["digest"] for la in doc["layers"]] == [b.digest for b in manifest.layers]
    for child in manifest.children:
        _check(child)


@pytest.mark.parametrize("size", [100, 64 * 1024, 1024 * 1024])
def test_layer_is_a_gzipped_tar_close_to_size(size: int) -> None:
    layer = random_layer(random.Random(size), size)
    assert layer.media_type == images.OCI_LAYER
    assert abs(layer.size - size) <= max(1024, size // 100)
    tar_bytes = gzip.decompress(layer.data)
    assert layer.diff_id == _sha(tar_bytes)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        files = [m for m in tar.getmembers() if m.isfile()]
    assert files
    assert sum(m.size for m in files) <= size


def test_seeded_builds_are_reproducible() -> None:
    one = build_image(random.Random(7), layers=2, layer_size=4096)
    two = build_image(random.Random(7), layers=2, layer_size=4096)
    three = build_image(random.Random(8), layers=2, layer_size=4096)
    assert one.raw == two.raw
    assert one.digest != three.digest


def test_image_config_matches_layers() -> None:
    rng = random.Random(9)
    base = random_layer(rng, 2048)
    image = build_image(rng, layers=2, layer_size=1024, base=base, annotations={"a": "b"})
    _check(image)
    config = json.loads(image.blobs[0].data)
    assert config["rootfs"]["diff_ids"] == [b.uncompressed_digest() for b in image.layers]
    assert image.layers[0].digest == base.digest
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert image.json()["annotations"] == {"a": "b"}
    assert image.platform == {"os": "linux", "architecture": "amd64"}


def test_docker_media_types() -> None:
    index = build_multiplatform(random.Random(10), docker=True)
    _check(index)
    assert index.media_type == images.DOCKER_LIST
    child = index.children[0]
    assert child.media_type == images.DOCKER_MANIFEST
    assert child.json()["config"]["mediaType"] == images.DOCKER_CONFIG
    assert {la["mediaType"] for la in child.json()["layers"]} == {images.DOCKER_LAYER}
    with pytest.raises(ValueError, match="Docker"):
        build_image(random.Random(1), docker=True, annotations={"x": "y"})


def test_artifact_shape() -> None:
    subject = build_image(random.Random(11), layers=1, layer_size=512)
    art = build_artifact(
        subject, "application/vnd.example.sbom", b"{}\n", "application/json", {"k": "v"}
    )
    _check(art)
    doc = art.json()
    assert doc["artifactType"] == "application/vnd.example.sbom"
    assert doc["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert doc["subject"] == {
        "mediaType": subject.media_type,
        "digest": subject.digest,
        "size": subject.size,
    }
    assert art.descriptor()["artifactType"] == "application/vnd.example.sbom"
    assert referrers_tag(subject.digest) == subject.digest.replace(":", "-")


def test_multiplatform_index_is_accepted(reg: RunningRegistry) -> None:
    rng = random.Random(12)
    base = random_layer(rng, 8192)
    index = build_multiplatform(rng, base=base, annotations={"org.example": "x"})
    _check(index)
    assert [c.platform for c in index.children] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    assert [b.digest for b in index.all_blobs()].count(base.digest) == 1
    client = RegistryClient(reg.url)
    # The registry refuses an index whose children are missing: order matters.
    refused = client.request(
        "PUT", "/v2/multi/manifests/v1", body=index.raw, headers={"Content-Type": index.media_type}
    )
    assert refused.status == 400
    assert b"MANIFEST_BLOB_UNKNOWN" in refused.body
    client.push_image("multi", index, "v1")
    got = client.get_manifest("multi", "v1", accept=images.OCI_INDEX)
    assert got.body == index.raw
    assert got.headers["docker-content-digest"] == index.digest
    for child in index.children:
        assert (
            client.get_manifest("multi", child.digest, accept=images.OCI_MANIFEST).body == child.raw
        )


def test_docker_image_subject_and_artifact_are_accepted(reg: RunningRegistry) -> None:
    rng = random.Random(13)
    client = RegistryClient(reg.url)
    docker = build_multiplatform(rng, docker=True, layers=1, layer_size=1024)
    client.push_image("docker", docker, "v1")
    assert client.get_manifest("docker", "v1").body == docker.raw
    subject = docker.children[0]
    art = build_artifact(subject, "application/vnd.example.sig", b"sig", "application/octet-stream")
    client.push_image("docker", art)
    signed = build_image(rng, layers=1, layer_size=256, subject=subject, artifact_type="x/y")
    client.push_image("docker", signed)
    referrers = build_index([art, signed])
    client.push_image("docker", referrers, referrers_tag(subject.digest))
    got = client.get_manifest("docker", referrers_tag(subject.digest))
    assert got.body == referrers.raw
    assert [m.get("artifactType") for m in got.json()["manifests"]] == [  # type: ignore[index]
        "application/vnd.example.sig",
        "x/y",
    ]


def test_blob_of() -> None:
    blob = Blob.of("text/plain", b"hello")
    assert blob.digest == _sha(b"hello")
    assert blob.size == 5
