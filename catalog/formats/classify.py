"""What an attachment manifest is (signature, attestation, SBOM, other) and which decoder reads
each of its layers, from its artifact type, layer media types and annotations alone.

SBOM predicates count as ``sbom``; every other in-toto predicate as ``attestation``. A manifest
whose layers differ (a cosign ``.att`` with provenance and an SBOM, a BuildKit attestation
manifest) is an ``attestation``; its layers say what each one is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from catalog.formats import intoto
from catalog.oci import mediatypes as mt
from catalog.oci.manifest import Descriptor, Manifest

AttachmentKind = Literal["signature", "attestation", "sbom", "other"]
Decoder = Literal[
    "cosign-signature",  # cosign.decode_cosign_signature
    "cosign-attestation",  # cosign.decode_cosign_attestation
    "sigstore-bundle",  # bundle.decode_bundle
    "notation",  # notation.decode_notation_signature
    "in-toto-statement",  # intoto.decode_statement, or sbom.decode_sbom_statement for an SBOM
    "sbom-json",  # sbom.decode_sbom
]

COSIGN_PREDICATE_TYPE = "predicateType"  # on cosign .att layers
BUILDKIT_PREDICATE_TYPE = "in-toto.io/predicate-type"  # on BuildKit attestation layers
BUNDLE_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"
BUNDLE_CONTENT = "dev.sigstore.bundle.content"
_MESSAGE_SIGNATURE = "message-signature"

_SIGSTORE_BUNDLES = frozenset(
    {
        mt.SIGSTORE_BUNDLE_V03,
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
    }
)
_SBOM_JSON = frozenset(
    {"text/spdx+json", "application/spdx+json", "application/vnd.cyclonedx+json"}
)
# SBOMs we recognise but do not decode (tag-value, XML, syft's own JSON).
_SBOM_OTHER = frozenset(
    {
        "text/spdx",
        "text/spdx+xml",
        "application/vnd.cyclonedx",
        "application/vnd.cyclonedx+xml",
        "application/vnd.syft+json",
    }
)


@dataclass(frozen=True, slots=True)
class Layer:
    media_type: str
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LayerClass:
    kind: AttachmentKind
    decoder: Decoder | None  # None: nothing this package decodes


@dataclass(frozen=True, slots=True)
class Classification:
    kind: AttachmentKind
    layers: tuple[LayerClass, ...]


def classify(
    *,
    artifact_type: str | None,
    config_media_type: str | None,
    layers: Sequence[Layer],
    annotations: Mapping[str, str],
) -> Classification:
    """``annotations`` are the manifest's; OCI's artifact type falls back to the config's."""
    effective = artifact_type or config_media_type
    classes = tuple(_layer(layer, annotations) for layer in layers)
    if effective == mt.NOTATION_SIGNATURE:
        return Classification("signature", classes)
    if effective in _SIGSTORE_BUNDLES:
        return Classification(_bundle_kind(annotations), classes)
    if effective == mt.COSIGN_SBOM_ARTIFACT or effective in _SBOM_JSON | _SBOM_OTHER:
        return Classification("sbom", classes)
    kinds = {c.kind for c in classes} - {"other"}
    if not kinds:
        return Classification("other", classes)
    return Classification(kinds.pop() if len(kinds) == 1 else "attestation", classes)


def _layer(layer: Layer, manifest_annotations: Mapping[str, str]) -> LayerClass:
    media_type = layer.media_type
    if media_type == mt.COSIGN_SIMPLESIGNING:
        return LayerClass("signature", "cosign-signature")
    if media_type == mt.DSSE_ENVELOPE:
        return LayerClass(
            _predicate_kind(layer.annotations.get(COSIGN_PREDICATE_TYPE)), "cosign-attestation"
        )
    if media_type == intoto.PAYLOAD_TYPE:
        return LayerClass(
            _predicate_kind(layer.annotations.get(BUILDKIT_PREDICATE_TYPE)), "in-toto-statement"
        )
    if media_type in _SIGSTORE_BUNDLES:
        return LayerClass(
            _bundle_kind({**manifest_annotations, **layer.annotations}), "sigstore-bundle"
        )
    if media_type in (mt.NOTATION_JWS, mt.NOTATION_COSE):
        return LayerClass("signature", "notation")
    if media_type in _SBOM_JSON:
        return LayerClass("sbom", "sbom-json")
    if media_type in _SBOM_OTHER:
        return LayerClass("sbom", None)
    return LayerClass("other", None)


def _bundle_kind(annotations: Mapping[str, str]) -> AttachmentKind:
    predicate_type = annotations.get(BUNDLE_PREDICATE_TYPE)
    if predicate_type == intoto.COSIGN_SIGN_PREDICATE:
        return "signature"
    if predicate_type is None and annotations.get(BUNDLE_CONTENT) == _MESSAGE_SIGNATURE:
        return "signature"
    return _predicate_kind(predicate_type)


def _predicate_kind(predicate_type: str | None) -> AttachmentKind:
    return "sbom" if predicate_type and intoto.is_sbom_predicate(predicate_type) else "attestation"


# cosign's tag suffixes (``sha256-<hex>.sig`` …) and the kind each stands for.
COSIGN_SUFFIX_KIND: dict[str, AttachmentKind] = {
    "sig": "signature",
    "att": "attestation",
    "sbom": "sbom",
}


def classify_manifest(manifest: Manifest) -> Classification:
    """:func:`classify` for a parsed attachment manifest."""
    return classify(
        artifact_type=manifest.artifact_type,
        config_media_type=manifest.config.media_type if manifest.config else None,
        layers=[Layer(d.media_type, d.annotations) for d in manifest.layers],
        annotations=manifest.annotations,
    )


def manifest_kind(manifest: Manifest) -> AttachmentKind:
    return classify_manifest(manifest).kind


def descriptor_kind(descriptor: Descriptor) -> AttachmentKind:
    """The kind as a referrers listing shows it: artifact type and annotations, no layers (which
    settle the rest: when this says ``other``, ask the manifest)."""
    return classify(
        artifact_type=descriptor.artifact_type,
        config_media_type=None,
        layers=(),
        annotations=descriptor.annotations,
    ).kind
