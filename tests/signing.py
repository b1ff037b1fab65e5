"""Attachments written in the formats real tools write, by test code: cosign ``.sig`` manifests
signed with a key made here, SBOM referrers, and BuildKit in-index attestations."""

from __future__ import annotations

import base64
import json
import textwrap
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.oci import mediatypes as mt
from catalog.oci.attachments import cosign_tag
from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from tests.harness.images import Blob, BuiltManifest, serialize
from tests.pushing import push_built

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


def signature_tag(subject_digest: str) -> str:
    """The cosign ``.sig`` tag of a subject: ``sha256-<hex>.sig``."""
    return cosign_tag(Digest.parse(subject_digest), "sig")


async def push_signature(
    client: RegistryClient, repository: str, subject_digest: str, key: ec.EllipticCurvePrivateKey
) -> BuiltManifest:
    """Sign ``subject_digest`` with ``key`` as cosign does and push it under its ``.sig`` tag."""
    signature = cosign_signature(subject_digest, key, f"{client.host}/{repository}")
    await push_built(client, repository, signature, signature_tag(subject_digest))
    return signature


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_policy(host: str, key: ec.EllipticCurvePrivateKey) -> str:
    """A policy set allowing ``host``'s ``shop/**`` images signed with ``key``."""
    return textwrap.dedent(
        """\
        name: signed-by-release-key
        images: ["{host}/shop/**"]
        authorities:
          - name: release-key
            key:
              pem: |
        {pem}
        """
    ).format(host=host, pem=textwrap.indent(public_pem(key), " " * 10))
