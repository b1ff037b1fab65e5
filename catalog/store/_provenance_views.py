"""A build's provenance, as an attestation states it (also the policy facts' record): loaded by
catalog.store.views on first use (see there)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProvenanceView:
    builder_id: str | None
    build_type: str | None
    source_uri: str | None
    source_digest: str | None
    source_ref: str | None
    entry_point: str | None
