"""Plain records the decoders produce: frozen, format-neutral, free of parser objects.

Digests are always written ``"<alg>:<lower-case hex>"``; certificates as PEM text; timestamps as
UTC ``datetime`` or Unix seconds where the source format uses seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

SignatureFormat = Literal["cosign", "sigstore-bundle", "notation"]
SbomFormat = Literal["spdx", "cyclonedx"]


@dataclass(frozen=True, slots=True)
class DsseSignature:
    """One signature of a DSSE envelope; ``keyid`` is ``None`` when empty or absent."""

    sig: bytes
    keyid: str | None = None


@dataclass(frozen=True, slots=True)
class DsseEnvelope:
    payload_type: str
    payload: bytes
    signatures: tuple[DsseSignature, ...]


@dataclass(frozen=True, slots=True)
class Subject:
    """An in-toto subject: its name (optional in Statement v1) and digests, algorithm → hex."""

    name: str | None
    digests: dict[str, str]


@dataclass(frozen=True, slots=True)
class StatementRecord:
    """An in-toto Statement (v0.1 or v1).

    ``predicate`` is ``None`` when the statement was too large to hold in memory (an SBOM
    predicate, usually): decode such a payload with ``sbom.decode_sbom_statement``, which streams.
    ``size``: the statement's bytes (its JSON), which tell whether it is small enough to keep.
    """

    statement_type: str
    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: dict[str, Any] | None
    size: int


@dataclass(frozen=True, slots=True)
class TlogEntry:
    """A transparency-log (Rekor) entry as the signature carries it; nothing here is verified."""

    kind: str | None
    version: str | None
    log_index: int | None
    log_id: str | None  # hex
    integrated_time: int | None  # Unix seconds; Rekor v2 entries have none
    body: bytes | None  # the canonicalized entry body
    signed_entry_timestamp: bytes | None  # the SET (inclusion promise)
    has_inclusion_proof: bool


@dataclass(frozen=True, slots=True)
class NotationDetails:
    """What a Notary Project signature says about itself beyond the common fields."""

    signing_scheme: str | None  # notary.x509 | notary.x509.signingAuthority
    signing_time: datetime | None  # signingTime, or authenticSigningTime for signingAuthority
    expiry: datetime | None
    algorithm: str | None  # JWS alg
    content_type: str | None
    signing_agent: str | None
    thumbprints: tuple[str, ...]  # SHA-256 of the chain, leaf first, lower-case hex


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureRecord:
    """One signature, whatever its storage format.

    ``payload`` is the exact signed content (cosign payload, DSSE payload, JWS payload); a bundle
    message signature carries no payload, only the digest it signs. ``signed_digests`` are the
    digests the payload claims to sign: a signature is evidence about a manifest only when its
    digest is among them.
    """

    format: SignatureFormat
    media_type: str | None = None
    payload: bytes | None = None
    payload_type: str | None = None
    signature: bytes | None = None
    certificate_pem: str | None = None
    chain_pem: tuple[str, ...] = ()
    identity: str | None = None  # certificate SAN (Fulcio) or subject DN (Notary Project)
    issuer: str | None = None  # Fulcio OIDC issuer extension
    extensions: dict[str, str] = field(default_factory=dict)  # Fulcio extensions by name
    key_id: str | None = None
    tlog_entries: tuple[TlogEntry, ...] = ()
    rfc3161_timestamps: tuple[bytes, ...] = ()
    signed_digests: tuple[str, ...] = ()
    docker_reference: str | None = None
    statement: StatementRecord | None = None
    notation: NotationDetails | None = None


@dataclass(frozen=True, slots=True)
class Material:
    uri: str | None
    digests: dict[str, str]


@dataclass(frozen=True, slots=True)
class ProvenanceRecord:
    """SLSA provenance (v0.2 or v1) reduced to what provenance questions need."""

    predicate_type: str
    builder_id: str | None
    build_type: str | None
    source_uri: str | None  # without ``git+`` and without the ``@ref`` suffix
    source_digest: str | None  # commit hex
    source_ref: str | None
    entry_point: str | None  # workflow path / entryPoint
    invocation_id: str | None
    materials: tuple[Material, ...]


class PackageRecord(NamedTuple):
    """One SBOM package or component.

    ``purl`` is the canonical form (packageurl-python), ``None`` when the document's purl does not
    parse; ``raw_purl`` keeps the document's text either way. ``type`` and ``namespace`` come from
    the purl (CycloneDX ``group`` stands in for a missing namespace); ``name`` and ``version`` are
    the document's own, falling back to the purl's.

    A named tuple, unlike the other records: an SBOM makes one per package, and a frozen
    dataclass costs three times as much to build (a fifth of a small SBOM's decoding).
    """

    purl: str | None
    raw_purl: str | None
    type: str | None
    namespace: str | None
    name: str | None
    version: str | None
    licenses: tuple[str, ...]
    supplier: str | None
    kind: str | None  # CycloneDX component type or SPDX primaryPackagePurpose


@dataclass(frozen=True, slots=True)
class SbomRecord:
    """An SBOM's header; ``packages`` streams the packages from the source on each iteration.

    Iterating may raise ``FormatError`` for a package that is malformed. For a statement-wrapped
    SBOM, ``predicate_type`` and ``subjects`` are the statement's.
    """

    format: SbomFormat
    spec_version: str
    name: str | None
    tools: tuple[str, ...]
    packages: Iterable[PackageRecord] = field(compare=False, repr=False)
    predicate_type: str | None = None
    subjects: tuple[Subject, ...] = ()
