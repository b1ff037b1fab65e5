"""cosign ``.att`` DSSE layers: the slsa-github-generator container provenance, as `cosign save`
wrote it (v1.10.0 and v2.0.0 layouts), verified offline against the production root."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from catalog.trust import roots
from catalog.trust.roots import TrustConfig
from catalog.trust.signatures import VerifiedSignature
from catalog.trust.verify import verify_layer
from tests.formats.fixtures import Layout, slsa_image_digest, slsa_layout
from tests.trust.verify_support import production

GENERATOR = (
    "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
    "generator_container_slsa3.yml@refs/tags/{version}"
)
ACTIONS = "https://token.actions.githubusercontent.com"
VERSIONS = ["v1.10.0", "v2.0.0"]


def att_layer(layout: Layout) -> dict[str, Any]:
    manifest = layout.json_blob(layout.attestation_manifest_digest())
    (layer,) = manifest["layers"]
    assert isinstance(layer, dict)
    return layer


def verify_att(
    version: str, subject: str, trust: TrustConfig, envelope: bytes | None = None
) -> VerifiedSignature:
    layout = slsa_layout(version)
    layer = att_layer(layout)
    return verify_layer(
        layer["mediaType"],
        layout.blob(layer["digest"]) if envelope is None else envelope,
        layer["annotations"],
        subject,
        trust,
        attachment_digest=layout.attestation_manifest_digest(),
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_slsa_provenance_attestation_verifies(version: str) -> None:
    result = verify_att(version, slsa_image_digest(version), production())

    assert result.verified, result.reason
    assert result.method == "keyless"
    assert result.trust_root == "sigstore:production"
    assert result.identity == GENERATOR.format(version=version)
    assert result.issuer == ACTIONS
    assert result.extensions["build_signer_uri"] == GENERATOR.format(version=version)
    assert result.extensions["source_repository_uri"] == (
        "https://github.com/slsa-framework/example-package"
    )
    assert result.predicate_type == "https://slsa.dev/provenance/v0.2"
    assert result.signed_digests == (slsa_image_digest(version),)
    assert result.log_index is not None
    assert result.attachment_digest == slsa_layout(version).attestation_manifest_digest()
    assert result.layer_digest == att_layer(slsa_layout(version))["digest"]


@pytest.mark.parametrize("version", VERSIONS)
def test_attestation_is_for_the_index_not_its_platform_manifests(version: str) -> None:
    layout = slsa_layout(version)
    index = layout.json_blob(slsa_image_digest(version))
    platform = index["manifests"][0]["digest"]

    result = verify_att(version, platform, production())

    assert not result.verified
    assert result.reason == (
        f"signature is for another digest: payload names {slsa_image_digest(version)}, "
        f"not {platform}"
    )


def test_attestation_with_an_edited_statement_fails() -> None:
    version = "v2.0.0"
    layout = slsa_layout(version)
    envelope = json.loads(layout.blob(att_layer(layout)["digest"]))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["builder"]["id"] = "https://evil.example/builder"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    result = verify_att(
        version, slsa_image_digest(version), production(), json.dumps(envelope).encode()
    )

    assert not result.verified
    assert result.method == "keyless"
    assert result.reason == "no signature of the DSSE envelope verifies with the certificate's key"


def test_attestation_needs_the_production_root() -> None:
    staging = TrustConfig(sigstore=(roots.sigstore_instance("staging"),))
    result = verify_att("v1.10.0", slsa_image_digest("v1.10.0"), staging)

    assert not result.verified
    assert "in no trusted root (sigstore:staging)" in result.reason
