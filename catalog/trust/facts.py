"""What verification establishes about an image, and what a policy decides from it.

The verifier (``catalog.trust.verify``) produces :class:`VerifiedSignature`; the gate gathers
them with provenance and SBOM facts into :class:`ImageFacts`; a policy
(``catalog.trust.policy``) turns those into a :class:`Decision`. Plain frozen records, so each
step is testable on its own and results can be stored and re-evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from catalog.store.queries import ProvenanceView

Method = Literal["keyless", "key", "pki"]
# What SLSA provenance says, as the catalog stores it: one record for queries and policies.
ProvenanceFacts = ProvenanceView


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """One signature (or signed attestation) checked against the trust configuration.

    ``verified`` is True only when the cryptography holds (signature over the payload, chain to a
    trusted root at signing time, transparency-log promise where the method needs one) *and* the
    payload names the image digest being judged. ``reason`` says why not, or how it verified.
    Identity matching (issuer, subject, extensions) is the policy's job, on these fields.
    """

    attachment_digest: str
    layer_digest: str
    verified: bool
    reason: str
    method: Method | None  # None when nothing could be tried
    trust_root: str | None  # which root or key verified it: "sigstore:production", "key:<fp>"…
    trust_version: str  # the trust configuration's version this result was computed under
    identity: str | None = None  # certificate SAN (email, URI, otherName)
    issuer: str | None = None  # Fulcio OIDC issuer
    extensions: dict[str, str] = field(default_factory=dict)  # Fulcio extensions by name
    key_fingerprint: str | None = None  # sha256 hex of the public key's SPKI DER (key method)
    log_index: int | None = None
    log_id: str | None = None
    integrated_time: int | None = None
    predicate_type: str | None = None  # set when the signed payload is an in-toto statement
    signed_digests: tuple[str, ...] = ()  # what the payload says it signs


@dataclass(frozen=True, slots=True)
class AttestationFacts:
    """A signed in-toto attestation of the image, with its provenance when it is SLSA."""

    signature: VerifiedSignature
    predicate_type: str
    provenance: ProvenanceFacts | None = None


@dataclass(frozen=True, slots=True)
class ImageFacts:
    digest: str
    reference: str | None  # what was asked for (policies match image globs against it)
    signatures: tuple[VerifiedSignature, ...] = ()  # plain signatures (not attestations)
    attestations: tuple[AttestationFacts, ...] = ()
    sbom_count: int = 0


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a rule passed: which signature, identity, log entry and rule."""

    rule: str  # e.g. "authority github-actions", "attestation https://slsa.dev/provenance/v0.2"
    attachment_digest: str
    method: Method | None
    identity: str | None
    issuer: str | None
    key_fingerprint: str | None
    log_index: int | None
    integrated_time: int | None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    digest: str
    policy: str | None  # the policy's name (None when no policy matched)
    policy_version: int | None
    mode: Literal["enforce", "warn"] | None
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...] = ()
