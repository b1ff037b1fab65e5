"""What a policy judges an image on, and what it decides.

The gate gathers verified signatures (``catalog.trust.VerifiedSignature``) with provenance and
SBOM facts into :class:`ImageFacts`; a policy turns those into a :class:`Decision`. Plain
immutable records, so each step is testable on its own and results can be stored and
re-evaluated: NamedTuples, which a one-shot command creates far cheaper than frozen dataclasses
(no generated source to compile; see ``catalog.trust.policy.compiled``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

from catalog.store.views import ProvenanceView
from catalog.trust.signatures import Method, VerifiedSignature

# What SLSA provenance says, as the catalog stores it: one record for queries and policies.
ProvenanceFacts = ProvenanceView


class AttestationFacts(NamedTuple):
    """A signed in-toto attestation of the image, with its provenance when it is SLSA."""

    signature: VerifiedSignature
    predicate_type: str
    provenance: ProvenanceFacts | None = None


class ImageFacts(NamedTuple):
    digest: str
    reference: str | None  # what was asked for (policies match image globs against it)
    signatures: tuple[VerifiedSignature, ...] = ()  # plain signatures (not attestations)
    attestations: tuple[AttestationFacts, ...] = ()
    sbom_count: int = 0


class Namespace(NamedTuple):
    """Where in Kubernetes the image is to run: policies with ``namespaces`` select on it.
    ``labels`` is None when they could not be read (a label selector then counts as matching:
    an unreadable namespace must not escape a policy)."""

    name: str
    labels: Mapping[str, str] | None = None


class Evidence(NamedTuple):
    """Why a rule passed: which signature, identity, log entry and rule."""

    rule: str  # e.g. "authority github-actions", "attestation https://slsa.dev/provenance/v0.2"
    attachment_digest: str
    method: Method | None
    identity: str | None
    issuer: str | None
    key_fingerprint: str | None
    log_index: int | None
    integrated_time: int | None


class Decision(NamedTuple):
    allowed: bool
    digest: str
    policy: str | None  # the policy's name (None when no policy matched)
    policy_version: int | None
    mode: Literal["enforce", "warn"] | None
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...] = ()
