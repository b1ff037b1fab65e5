"""Attachments written in the formats real tools write, by test code: cosign ``.sig`` manifests
signed with a key made here, SBOM referrers, and BuildKit in-index attestations."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.oci import mediatypes as mt
from tests.harness.images import Blob, BuiltManifest, serialize

COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"


def _manifest(
    config: Blob, layers: list[tuple[Blob, dict[str, str]]], **extra: Any
) -> BuiltManifest:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, **extra}
    doc["config"] = config.descriptor()
    doc["layers"] = [
        {**blob.descriptor(), **({"annotations": notes} if notes else {})} for blob, notes in layers
    ]
    raw = serialize(doc)
    blob = Blob.of(mt.OCI_MANIFEST, raw)
    return BuiltManifest(
        mt.OCI_MANIFEST, raw, blob.digest, len(raw), [config, *(b for b, _ in layers)], [], None
    )


def cosign_signature(
    subject_digest: str, key: ec.EllipticCurvePrivateKey, reference: str
) -> BuiltManifest:
    """A cosign key-pair ``.sig`` manifest: simple-signing payload, ECDSA signature annotation."""
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": subject_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    config = Blob.of(
        mt.OCI_CONFIG,
        serialize({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": []}}),
    )
    layer = Blob.of(mt.COSIGN_SIMPLESIGNING, payload)
    return _manifest(config, [(layer, {COSIGN_SIGNATURE: signature})])


def buildkit_attestation(
    image: BuiltManifest, statement: bytes, predicate_type: str
) -> BuiltManifest:
    """A BuildKit attestation manifest describing ``image`` (goes inside the image's index)."""
    config = Blob.of(
        mt.OCI_CONFIG,
        serialize({"architecture": "unknown", "os": "unknown", "rootfs": {"type": "layers"}}),
    )
    layer = Blob.of("application/vnd.in-toto+json", statement)
    return _manifest(config, [(layer, {"in-toto.io/predicate-type": predicate_type})])


def attestation_descriptor(attestation: BuiltManifest, image_digest: str) -> dict[str, Any]:
    return {
        **attestation.descriptor(),
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {
            mt.BUILDKIT_REFERENCE_TYPE: mt.BUILDKIT_ATTESTATION,
            mt.BUILDKIT_REFERENCE_DIGEST: image_digest,
        },
    }


def index_with_attestation(image: BuiltManifest, attestation: BuiltManifest) -> BuiltManifest:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {**image.descriptor(), "platform": {"architecture": "amd64", "os": "linux"}},
            attestation_descriptor(attestation, image.digest),
        ],
    }
    raw = serialize(doc)
    return BuiltManifest(
        mt.OCI_INDEX,
        raw,
        Blob.of(mt.OCI_INDEX, raw).digest,
        len(raw),
        [],
        [image, attestation],
        None,
    )
