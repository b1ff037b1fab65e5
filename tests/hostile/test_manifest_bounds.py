"""Whatever the bytes, ``parse_manifest`` answers a ``Manifest`` or ``InvalidManifest`` in bounded
time and memory: nesting, value count, kept strings and sizes are checked, and a mangled real
manifest never raises anything else (a ``RecursionError``, ``ValueError`` or ``UnicodeError``
escaped before, and failed whole crawls)."""

from __future__ import annotations

import json
import random
import time
import tracemalloc

import pytest

from catalog.oci import mediatypes as mt
from catalog.oci.boundedjson import JSONRefused, loads
from catalog.oci.errors import InvalidManifest, InvalidReference
from catalog.oci.manifest import Manifest, parse_manifest
from catalog.oci.reference import validate_repository, validate_tag

_DIGEST = "sha256:" + "1" * 64


def _manifest(**extra: object) -> dict[str, object]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": _DIGEST, "size": 10},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _DIGEST, "size": 1}
        ],
        **extra,
    }


def _index(child: dict[str, object]) -> bytes:
    descriptor = {"mediaType": mt.OCI_MANIFEST, "digest": _DIGEST, "size": 1, **child}
    return json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [descriptor]}
    ).encode()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested deeper than 64 levels"),
        (b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}", "nested deeper than 64 levels"),
        (b'{"a": ' + b"[" * 3_000_000, "more than 500000 JSON values"),
        (b'{"a": ' + b"1" * 5000 + b"}", "Exceeds the limit (4300 digits)"),
        (b'{"a": NaN}', "NaN is not JSON"),
        (b'{"a": "\xc3\x28"}', "'utf-8' codec can't decode"),
        (json.dumps(_manifest(artifactType="a/\ud800")).encode(), "unpaired surrogate"),
        (json.dumps(_manifest(annotations={"k": "a\x00b"})).encode(), "contains NUL"),
        (json.dumps(_manifest(artifactType="a/" + "b" * 300)).encode(), "over the limit of 255"),
        (json.dumps(_manifest(mediaType="x" * 300)).encode(), "over the limit of 255"),
        (_index({"size": 2**63}), "not an int64 byte count"),
        (_index({"size": -1}), "not an int64 byte count"),
        (_index({"platform": {"os": "l" * 65, "architecture": "amd64"}}), "over the limit of 64"),
        (_index({"mediaType": 7}), "'mediaType' must be a str"),
        (_index({"digest": "sha256:" + "a" * 100_000}), "invalid"),
    ],
)
def test_hostile_manifests_are_refused_in_one_line(raw: bytes, says: str) -> None:
    began = time.monotonic()
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(raw)
    assert time.monotonic() - began < 2
    message = str(caught.value)
    assert says in message
    assert "\n" not in message
    assert len(message) < 1200


def test_a_list_bomb_is_refused_before_it_is_built() -> None:
    bomb = b"[" + b"[]," * 1_300_000 + b"[]]"  # json.loads would build ~90 MB of lists
    tracemalloc.start()
    try:
        with pytest.raises(JSONRefused, match="more than 500000 JSON values"):
            loads(bomb, max_depth=64, max_values=500_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_mangled_manifests_give_a_manifest_or_invalid_manifest() -> None:
    rng = random.Random("mangle")
    good = json.dumps(
        _manifest(annotations={"org.opencontainers.image.title": "x"}, artifactType="a/b"),
        indent=1,
    ).encode()
    garbage = [b"[", b"{", b'"', b"\\u", b"\\ud800", b",", b"\xff", b"]]", b"1" * 5000, b"\x00"]
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(2000):
        damaged = bytearray(good)
        at = rng.randrange(len(damaged))
        if rng.random() < 0.5:
            damaged[at : at + rng.randint(1, 8)] = rng.choice(garbage) * rng.randint(1, 2000)
        else:
            damaged[at] = rng.randrange(256)
        try:
            result = parse_manifest(bytes(damaged))
        except InvalidManifest:
            outcomes["refused"] += 1
        else:
            assert isinstance(result, Manifest)
            outcomes["parsed"] += 1
    assert outcomes["refused"] > 0
    assert outcomes["parsed"] > 0


@pytest.mark.parametrize("tag", ["v1\n", "v\u00e9", "", "-x", "a" * 129, "a/b", "a\x00"])
def test_tags_off_the_grammar_are_refused(tag: str) -> None:
    with pytest.raises(InvalidReference):
        validate_tag(tag)


@pytest.mark.parametrize("name", ["acme/api\n", "acme/\u00e9", "Acme/api", "a" * 256, "a//b"])
def test_repository_names_off_the_grammar_are_refused(name: str) -> None:
    with pytest.raises(InvalidReference):
        validate_repository(name)
