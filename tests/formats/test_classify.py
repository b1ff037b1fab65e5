"""Attachment kinds from artifact types, layer media types and annotations."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.formats.classify import AttachmentKind, Classification, Layer, LayerClass, classify
from tests.formats.fixtures import COSIGN_LEGACY, sigstore_json, slsa_layout

SPDX = "https://spdx.dev/Document"
CYCLONEDX = "https://cyclonedx.org/bom/v1.5"
PROVENANCE = "https://slsa.dev/provenance/v1"
COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def of_manifest(manifest: dict[str, Any]) -> Classification:
    return classify(
        artifact_type=manifest.get("artifactType"),
        config_media_type=manifest["config"]["mediaType"],
        layers=[Layer(x["mediaType"], x.get("annotations", {})) for x in manifest["layers"]],
        annotations=manifest.get("annotations", {}),
    )


def test_cosign_att_manifest_from_the_slsa_layout() -> None:
    layout = slsa_layout("v2.0.0")
    result = of_manifest(layout.json_blob(layout.attestation_manifest_digest()))
    assert result == Classification(
        "attestation", (LayerClass("attestation", "cosign-attestation"),)
    )


def test_buildkit_attestation_manifest_from_the_slsa_layout() -> None:
    layout = slsa_layout("v1.10.0")
    image_index = layout.json_blob(layout.index()["manifests"][0]["digest"])
    (attestation,) = (m for m in image_index["manifests"] if "annotations" in m)
    result = of_manifest(layout.json_blob(attestation["digest"]))
    assert result == Classification(
        "attestation", (LayerClass("attestation", "in-toto-statement"),)
    )


def test_cosign_sig_layers_from_containers_image() -> None:
    layers = [
        sigstore_json(path)
        for path in sorted((COSIGN_LEGACY / "dir-img-cosign-valid-2").glob("signature-*"))
    ]
    result = classify(
        artifact_type=None,
        config_media_type=OCI_CONFIG,
        layers=[Layer(x.media_type, x.annotations) for x in layers],
        annotations={},
    )
    assert result.kind == "signature"
    assert result.layers == (LayerClass("signature", "cosign-signature"),) * 2


def test_a_layer_that_only_claims_to_be_a_signature() -> None:
    layer = sigstore_json(COSIGN_LEGACY / "dir-img-cosign-other-attachment" / "signature-1")
    result = classify(
        artifact_type=None,
        config_media_type=OCI_CONFIG,
        layers=[Layer(layer.media_type, layer.annotations)],
        annotations={},
    )
    assert result == Classification("other", (LayerClass("other", None),))


@pytest.mark.parametrize(
    ("artifact_type", "config", "layers", "annotations", "kind", "layer_classes"),
    [
        # Notation, by artifactType (OCI 1.1) or by config media type (OCI 1.0 registries).
        (
            "application/vnd.cncf.notary.signature",
            EMPTY,
            [Layer("application/jose+json")],
            {"io.cncf.notary.x509chain.thumbprint#S256": "[]"},
            "signature",
            [LayerClass("signature", "notation")],
        ),
        (
            None,
            "application/vnd.cncf.notary.signature",
            [Layer("application/cose")],
            {},
            "signature",
            [LayerClass("signature", "notation")],
        ),
        # cosign 3 bundles: the predicate annotation decides.
        (
            BUNDLE,
            EMPTY,
            [Layer(BUNDLE)],
            {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": COSIGN_SIGN,
            },
            "signature",
            [LayerClass("signature", "sigstore-bundle")],
        ),
        (
            BUNDLE,
            EMPTY,
            [Layer(BUNDLE)],
            {"dev.sigstore.bundle.predicateType": PROVENANCE},
            "attestation",
            [LayerClass("attestation", "sigstore-bundle")],
        ),
        (
            BUNDLE,
            EMPTY,
            [Layer(BUNDLE)],
            {"dev.sigstore.bundle.predicateType": SPDX},
            "sbom",
            [LayerClass("sbom", "sigstore-bundle")],
        ),
        (
            BUNDLE,
            EMPTY,
            [Layer(BUNDLE)],
            {"dev.sigstore.bundle.content": "message-signature"},
            "signature",
            [LayerClass("signature", "sigstore-bundle")],
        ),
        # cosign .att with an SBOM predicate, and a mixed one.
        (
            None,
            OCI_CONFIG,
            [Layer("application/vnd.dsse.envelope.v1+json", {"predicateType": CYCLONEDX})],
            {},
            "sbom",
            [LayerClass("sbom", "cosign-attestation")],
        ),
        (
            None,
            OCI_CONFIG,
            [
                Layer("application/vnd.dsse.envelope.v1+json", {"predicateType": PROVENANCE}),
                Layer("application/vnd.dsse.envelope.v1+json", {"predicateType": SPDX}),
            ],
            {},
            "attestation",
            [
                LayerClass("attestation", "cosign-attestation"),
                LayerClass("sbom", "cosign-attestation"),
            ],
        ),
        # BuildKit: an SBOM layer and a provenance layer in one attestation manifest.
        (
            None,
            OCI_CONFIG,
            [
                Layer("application/vnd.in-toto+json", {"in-toto.io/predicate-type": SPDX}),
                Layer(
                    "application/vnd.in-toto+json",
                    {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
                ),
            ],
            {"vnd.docker.reference.type": "attestation-manifest"},
            "attestation",
            [
                LayerClass("sbom", "in-toto-statement"),
                LayerClass("attestation", "in-toto-statement"),
            ],
        ),
        # SBOMs as artifacts: cosign attach sbom (OCI 1.1), .sbom tags, tools' own types.
        (
            "application/vnd.dev.cosign.artifact.sbom.v1+json",
            EMPTY,
            [Layer("text/spdx+json")],
            {},
            "sbom",
            [LayerClass("sbom", "sbom-json")],
        ),
        (
            None,
            OCI_CONFIG,
            [Layer("application/vnd.cyclonedx+xml")],
            {},
            "sbom",
            [LayerClass("sbom", None)],
        ),
        (
            "application/spdx+json",
            EMPTY,
            [Layer("application/spdx+json")],
            {},
            "sbom",
            [LayerClass("sbom", "sbom-json")],
        ),
        # Nothing recognisable.
        (
            "application/vnd.example.thing",
            EMPTY,
            [Layer("application/octet-stream")],
            {},
            "other",
            [LayerClass("other", None)],
        ),
        (None, OCI_CONFIG, [], {}, "other", []),
    ],
)
def test_classify(
    artifact_type: str | None,
    config: str,
    layers: list[Layer],
    annotations: dict[str, str],
    kind: AttachmentKind,
    layer_classes: list[LayerClass],
) -> None:
    result = classify(
        artifact_type=artifact_type,
        config_media_type=config,
        layers=layers,
        annotations=annotations,
    )
    assert result == Classification(kind, tuple(layer_classes))
