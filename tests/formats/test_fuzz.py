"""Mangled real documents: whatever the damage, a decoder answers with a record or FormatError."""

from __future__ import annotations

import base64
import contextlib
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from catalog.errors import FormatError
from catalog.formats import bundle, cosign, dsse, intoto, sbom, slsa
from tests.formats.fixtures import CONFORMANCE, COSIGN_LEGACY, SBOMS, sigstore_json, slsa_layout

ROUNDS = 300
_REPLACEMENTS: list[Any] = [
    None,
    True,
    -1,
    2**70,
    1.5,
    "",
    "x" * 70_000,
    "\u0000",
    "%%%",
    [],
    [None],
    {},
    {"a": 1},
    "pkg:",
]


def mangle_bytes(data: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(data)
    choice = rng.randrange(3)
    if choice == 0:
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
    elif choice == 1:
        del damaged[rng.randrange(len(damaged)) :]
    else:
        at = rng.randrange(len(damaged))
        damaged[at:at] = rng.choice([b"[", b"{", b'"', b"\\u", b",", b"\xff", b"]]"]) * rng.randint(
            1, 300
        )
    return bytes(damaged)


def nodes(value: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every value inside a parsed JSON document."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, child in items:
            found.append((node, key))
            stack.append(child)
    return found


def mangle_json(document: Any, rng: random.Random) -> Any:
    """The same document with a few values swapped for values of the wrong type."""
    copy = json.loads(json.dumps(document))
    places = nodes(copy)
    for _ in range(rng.randint(1, 3)):
        container, key = rng.choice(places)
        container[key] = rng.choice(_REPLACEMENTS)
    return copy


def only_format_errors(decode: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(FormatError):
        decode(data)


def read_sbom(data: bytes) -> None:
    for _ in sbom.decode_sbom(data).packages:
        pass


def read_sbom_statement(data: bytes) -> None:
    for _ in sbom.decode_sbom_statement(data).packages:
        pass


def read_bundle_provenance(data: bytes) -> None:
    record = bundle.decode_bundle(data)
    if record.statement is not None and slsa.is_provenance(record.statement.predicate_type):
        slsa.decode_provenance(record.statement)


def read_statement(data: bytes) -> None:
    intoto.decode_statement(data)
    intoto.decode_statement(data, inline_limit=0)  # the streaming path too


FULCIO = sigstore_json(COSIGN_LEGACY / "dir-img-cosign-fulcio-rekor-valid" / "signature-1")
_LAYOUT = slsa_layout("v1.10.0")
(_ATT_LAYER,) = _LAYOUT.json_blob(_LAYOUT.attestation_manifest_digest())["layers"]
ATT_ENVELOPE = _LAYOUT.blob(_ATT_LAYER["digest"])
TRIVY_STATEMENT = dsse.decode_envelopes_jsonl(
    (SBOMS / "trivy-centos-7.cdx.intoto.jsonl").read_bytes()
)[0].payload

CASES: dict[str, tuple[Callable[[bytes], object], bytes]] = {
    "bundle-v0.1": (
        bundle.decode_bundle,
        (CONFORMANCE / "happy-path-v0.1" / "bundle.sigstore.json").read_bytes(),
    ),
    "bundle-v0.3-dsse": (
        read_bundle_provenance,
        (CONFORMANCE / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json").read_bytes(),
    ),
    "bundle-rekor2": (
        bundle.decode_bundle,
        (CONFORMANCE / "rekor2-happy-path" / "bundle.sigstore.json").read_bytes(),
    ),
    "bundle-managed-key": (
        bundle.decode_bundle,
        (CONFORMANCE / "managed-key-happy-path" / "bundle.sigstore.json").read_bytes(),
    ),
    "cosign-payload": (
        lambda data: cosign.decode_cosign_signature(data, FULCIO.annotations),
        FULCIO.payload,
    ),
    "cosign-rekor-bundle": (
        lambda data: cosign.decode_cosign_signature(
            FULCIO.payload, {**FULCIO.annotations, cosign.BUNDLE: data.decode("utf-8", "replace")}
        ),
        FULCIO.annotations[cosign.BUNDLE].encode(),
    ),
    "cosign-att": (
        lambda data: cosign.decode_cosign_attestation(data, _ATT_LAYER["annotations"]),
        ATT_ENVELOPE,
    ),
    "statement": (read_statement, base64.b64decode(json.loads(ATT_ENVELOPE)["payload"])),
    "spdx": (read_sbom, (SBOMS / "syft-image.spdx-2.3.json").read_bytes()),
    "cyclonedx": (read_sbom, (SBOMS / "trivy-centos-7.cdx-1.5.json").read_bytes()),
    "sbom-statement": (read_sbom_statement, TRIVY_STATEMENT),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mangled_bytes(case: str) -> None:
    decode, data = CASES[case]
    decode(data)  # the undamaged document decodes
    rng = random.Random(f"bytes-{case}")
    for _ in range(ROUNDS):
        only_format_errors(decode, mangle_bytes(data, rng))


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_of_the_wrong_type(case: str) -> None:
    decode, data = CASES[case]
    document = json.loads(data)
    rng = random.Random(f"types-{case}")
    for _ in range(ROUNDS):
        only_format_errors(decode, json.dumps(mangle_json(document, rng)).encode())
