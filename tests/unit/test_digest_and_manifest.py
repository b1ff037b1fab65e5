import json

import pytest

from catalog.oci import mediatypes as mt
from catalog.oci.digest import OFF_LOOP, Digest, StreamVerifier, Verifier
from catalog.oci.errors import (
    DigestMismatch,
    InvalidDigest,
    InvalidManifest,
    SizeMismatch,
    UnsupportedMediaType,
)
from catalog.oci.manifest import parse_manifest

EMPTY = {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2}


def test_digest_parse_validates_algorithm_and_length() -> None:
    d = Digest.of(b"hello")
    assert Digest.parse(str(d)) == d
    assert Digest.of(b"x", "sha512").algorithm == "sha512"
    for bad in ["sha256:" + "A" * 64, "sha256:abc", "sha1:" + "a" * 40, "nocolon", ""]:
        with pytest.raises(InvalidDigest):
            Digest.parse(bad)
    assert Digest.parse("sha256:" + "0" * 64).fallback_tag() == "sha256-" + "0" * 64


def test_verifier_checks_digest_and_size_while_streaming() -> None:
    data = b"x" * 1000
    v = Verifier(Digest.of(data), 1000)
    for i in range(0, 1000, 100):
        v.update(data[i : i + 100])
    v.verify()
    bad = Verifier(Digest.of(data), 1000)
    bad.update(b"y" * 1000)
    with pytest.raises(DigestMismatch):
        bad.verify()
    too_long = Verifier(Digest.of(data), 10)
    with pytest.raises(SizeMismatch):
        too_long.update(data)
    short = Verifier(Digest.of(data), 2000)
    short.update(data)
    with pytest.raises(SizeMismatch):
        short.verify()


async def test_stream_verifier_hashes_small_and_large_chunks_in_order() -> None:
    # Small chunks are hashed on the loop, large ones on a thread: interleaved, in order.
    small, large = b"a" * 1000, bytes(range(256)) * (OFF_LOOP // 256 + 1)
    data = small + large + small + large + small
    v = StreamVerifier(Digest.of(data), len(data))
    for chunk in (small, large, small, large, small):
        await v.feed(chunk)
    await v.verify()
    assert v.received == len(data)
    swapped = StreamVerifier(Digest.of(data), len(data))
    for chunk in (large, small, small, large, small):
        await swapped.feed(chunk)
    with pytest.raises(DigestMismatch):
        await swapped.verify()
    too_long = StreamVerifier(Digest.of(small), len(small) - 1)
    with pytest.raises(SizeMismatch):
        await too_long.feed(small)  # hashed on the loop: refused at once
    too_long = StreamVerifier(Digest.of(large), len(large) - 1)
    await too_long.feed(large)  # on a thread: refused when awaited
    with pytest.raises(SizeMismatch):
        await too_long.verify()


def _manifest(**extra: object) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": "sha256:" + "1" * 64, "size": 10},
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + "2" * 64,
                "size": 5,
            }
        ],
    }
    doc.update(extra)
    return json.dumps(doc, indent=3).encode()


def test_manifest_keeps_raw_bytes_and_digest() -> None:
    raw = _manifest(annotations={"a": "b"})
    m = parse_manifest(raw)
    assert m.raw == raw
    assert m.digest == Digest.of(raw)
    assert m.media_type == mt.OCI_MANIFEST
    assert [str(b.digest) for b in m.blobs()] == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    assert m.effective_artifact_type == mt.OCI_CONFIG


def test_artifact_manifest_with_subject() -> None:
    raw = _manifest(
        artifactType="application/example",
        config=EMPTY,
        subject={"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "3" * 64, "size": 9},
    )
    m = parse_manifest(raw)
    assert m.subject is not None
    assert str(m.subject.digest) == "sha256:" + "3" * 64
    assert m.effective_artifact_type == "application/example"


def test_docker_types_and_index_by_shape() -> None:
    docker = json.loads(_manifest())
    docker["mediaType"] = mt.DOCKER_MANIFEST
    assert parse_manifest(json.dumps(docker).encode()).media_type == mt.DOCKER_MANIFEST
    index = {"schemaVersion": 2, "manifests": []}
    assert parse_manifest(json.dumps(index).encode()).is_index
    lst = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_LIST, "manifests": []}
    assert parse_manifest(json.dumps(lst).encode()).media_type == mt.DOCKER_MANIFEST_LIST


@pytest.mark.parametrize(
    ("raw", "error", "reason"),
    [
        (b"{not json", InvalidManifest, "not valid JSON"),
        (b"[]", InvalidManifest, "JSON object"),
        (b'{"schemaVersion": 1, "name": "x"}', UnsupportedMediaType, "schema 1"),
        (b'{"schemaVersion": 2, "mediaType": "application/x-foo"}', UnsupportedMediaType, "x-foo"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_ARTIFACT_MANIFEST}).encode(),
            UnsupportedMediaType,
            "dropped",
        ),
        (_manifest(config=EMPTY), InvalidManifest, "artifactType is required"),
        (_manifest(layers="x"), InvalidManifest, "must be a list"),
        (_manifest(config={"mediaType": mt.OCI_CONFIG, "size": 1}), InvalidManifest, "digest"),
        (
            _manifest(config={"mediaType": mt.OCI_CONFIG, "size": True, "digest": mt.EMPTY_DIGEST}),
            InvalidManifest,
            "size",
        ),
        (_manifest(schemaVersion=3), InvalidManifest, "schemaVersion"),
        (_manifest(annotations={"a": 1}), InvalidManifest, "annotations"),
    ],
)
def test_bad_manifests_are_refused_with_reasons(
    raw: bytes, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        parse_manifest(raw)


def test_declared_type_contradicting_field_is_refused() -> None:
    with pytest.raises(InvalidManifest, match="contradicts"):
        parse_manifest(_manifest(), mt.DOCKER_MANIFEST)
    with pytest.raises(UnsupportedMediaType):
        parse_manifest(b'{"schemaVersion":2}', mt.DOCKER_SCHEMA1_SIGNED)
