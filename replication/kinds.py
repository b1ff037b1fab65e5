"""The kind of a referrer (signature, attestation, SBOM, other), for the rule's referrer filter.

A descriptor in a referrers listing carries the manifest's artifact type and annotations, which
settle most cases; a manifest also shows its layers, which settle the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.oci.manifest import Descriptor, Manifest

if TYPE_CHECKING:
    from catalog.formats.classify import AttachmentKind

COSIGN_SUFFIX_KIND: dict[str, AttachmentKind] = {
    "sig": "signature",
    "att": "attestation",
    "sbom": "sbom",
}


def descriptor_kind(descriptor: Descriptor) -> AttachmentKind:
    # Imported here: it pulls in cryptography (~50 ms at start-up), and a run needs it only
    # when its rule picks some referrer kinds, not all or none.
    from catalog.formats.classify import classify

    return classify(
        artifact_type=descriptor.artifact_type,
        config_media_type=None,
        layers=(),
        annotations=descriptor.annotations,
    ).kind


def manifest_kind(manifest: Manifest) -> AttachmentKind:
    from catalog.formats.classify import manifest_kind as kind

    return kind(manifest)
