"""An artifact's record and what hangs off it: loaded by catalog.store.views on first use
(see there)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.store._package_views import LocationView
from catalog.store._provenance_views import ProvenanceView


@dataclass(frozen=True, slots=True)
class PlatformView:
    digest: str
    os: str | None
    architecture: str | None
    variant: str | None


@dataclass(frozen=True, slots=True)
class AttachmentView:
    digest: str
    subject: str
    kind: str
    scheme: str
    artifact_type: str | None


@dataclass(frozen=True, slots=True)
class SignatureView:
    attachment_digest: str
    format: str
    identity: str | None
    issuer: str | None
    extensions: dict[str, Any]
    key_id: str | None
    log_index: int | None
    integrated_time: int | None
    signed_digests: list[str]


@dataclass(frozen=True, slots=True)
class AttestationView:
    attachment_digest: str
    predicate_type: str
    provenance: ProvenanceView | None


@dataclass(frozen=True, slots=True)
class SbomView:
    attachment_digest: str
    format: str
    spec_version: str | None
    tool: str | None
    package_count: int


@dataclass(frozen=True, slots=True)
class ArtifactView:
    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    platform: PlatformView | None
    children: list[PlatformView] = field(default_factory=list)
    locations: list[LocationView] = field(default_factory=list)
    attachments: list[AttachmentView] = field(default_factory=list)
    signatures: list[SignatureView] = field(default_factory=list)
    attestations: list[AttestationView] = field(default_factory=list)
    sboms: list[SbomView] = field(default_factory=list)
