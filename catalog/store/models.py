"""SQLAlchemy 2 models of the catalog.

Content-addressed at the core: a manifest is one row per digest wherever it lives; where it lives
is ``manifest_locations``. Attachment documents (signatures, attestations, SBOMs) hang off the
digest of the attachment manifest, so the same signature found in two registries is decoded once.
Schema changes go through Alembic migrations in ``migrations/`` only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from catalog.store.timestamps import UTCDateTime

DIGEST = String(160)  # "sha512:" + 128 hex fits


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


def table_of(model: type[Base]) -> Table:
    """The model's table, for Core statements on hot paths."""
    return Base.metadata.tables[model.__tablename__]


class Registry(Base):
    __tablename__ = "registries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    insecure: Mapped[bool] = mapped_column(Boolean, default=False)
    # The names of a CA file and of credentials in the process's secrets (catalog.oci.secrets),
    # never a path, a variable or the secret itself; rows from before names stay as they were
    # and are refused when opened.
    ca_file: Mapped[str | None] = mapped_column(String(1024))
    credentials_ref: Mapped[str | None] = mapped_column(String(1024))
    repositories_filter: Mapped[list[str]] = mapped_column(default=list)
    index_schedule: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The last index run (or the one under way): an IndexStatus (catalog.store.registries),
    # when it started and ended, why it failed, and how many index errors it recorded.
    last_index_status: Mapped[str | None] = mapped_column(Text)
    last_index_started_at: Mapped[datetime | None]
    last_index_at: Mapped[datetime | None]
    last_index_error: Mapped[str | None] = mapped_column(Text)
    last_index_errors: Mapped[int | None]

    repositories: Mapped[list[Repository]] = relationship(
        back_populates="owner", cascade="all, delete-orphan", passive_deletes=True
    )


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("registry_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_indexed_at: Mapped[datetime | None]
    gone_at: Mapped[datetime | None]

    # Not "registry": DeclarativeBase reserves that name.
    owner: Mapped[Registry] = relationship(back_populates="repositories")


class Manifest(Base):
    __tablename__ = "manifests"

    digest: Mapped[str] = mapped_column(DIGEST, primary_key=True)
    media_type: Mapped[str] = mapped_column(String(255))
    artifact_type: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    subject_digest: Mapped[str | None] = mapped_column(DIGEST, index=True)
    config_digest: Mapped[str | None] = mapped_column(DIGEST)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


class ManifestLocation(Base):
    __tablename__ = "manifest_locations"
    __table_args__ = (UniqueConstraint("repository_id", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(DIGEST, ForeignKey("manifests.digest"), index=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    gone_at: Mapped[datetime | None]


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(DIGEST, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    gone_at: Mapped[datetime | None]


class TagEvent(Base):
    """A tag observed pointing somewhere new: created (old None), moved, or gone (new None)."""

    __tablename__ = "tag_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    old_digest: Mapped[str | None] = mapped_column(DIGEST)
    new_digest: Mapped[str | None] = mapped_column(DIGEST)
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)


class IndexChild(Base):
    __tablename__ = "index_children"

    parent_digest: Mapped[str] = mapped_column(
        DIGEST, ForeignKey("manifests.digest"), primary_key=True
    )
    child_digest: Mapped[str] = mapped_column(DIGEST, primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(255))
    os: Mapped[str | None] = mapped_column(String(64))
    architecture: Mapped[str | None] = mapped_column(String(64))
    variant: Mapped[str | None] = mapped_column(String(64))
    # BuildKit attestation manifests are children too; this says which image one describes.
    attests_digest: Mapped[str | None] = mapped_column(DIGEST)


class Attachment(Base):
    """``attachment_digest`` is attached to ``subject_digest``, found by ``scheme``."""

    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("subject_digest", "attachment_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_digest: Mapped[str] = mapped_column(DIGEST, index=True)
    attachment_digest: Mapped[str] = mapped_column(DIGEST, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # signature | attestation | sbom | other
    scheme: Mapped[str] = mapped_column(String(32))
    artifact_type: Mapped[str | None] = mapped_column(String(255))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


class Signature(Base):
    __tablename__ = "signatures"
    __table_args__ = (UniqueConstraint("attachment_digest", "layer_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attachment_digest: Mapped[str] = mapped_column(DIGEST, index=True)
    layer_digest: Mapped[str] = mapped_column(DIGEST)
    format: Mapped[str] = mapped_column(String(32))
    identity: Mapped[str | None] = mapped_column(Text)
    issuer: Mapped[str | None] = mapped_column(Text)
    extensions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    key_id: Mapped[str | None] = mapped_column(String(255))
    log_index: Mapped[int | None] = mapped_column(BigInteger)
    integrated_time: Mapped[int | None] = mapped_column(BigInteger)
    signed_digests: Mapped[list[str]] = mapped_column(default=list)
    # What verification needs later: the layer blob and its annotations, exactly as found.
    layer_media_type: Mapped[str] = mapped_column(String(255))
    layer: Mapped[bytes] = mapped_column(LargeBinary)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Attestation(Base):
    __tablename__ = "attestations"
    __table_args__ = (UniqueConstraint("attachment_digest", "layer_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attachment_digest: Mapped[str] = mapped_column(DIGEST, index=True)
    layer_digest: Mapped[str] = mapped_column(DIGEST)
    predicate_type: Mapped[str] = mapped_column(String(255), index=True)
    subject_digests: Mapped[list[str]] = mapped_column(default=list)
    statement: Mapped[dict[str, Any]] = mapped_column(default=dict)

    provenance: Mapped[Provenance | None] = relationship(
        back_populates="attestation", cascade="all, delete-orphan", passive_deletes=True
    )


class Provenance(Base):
    __tablename__ = "provenance"

    id: Mapped[int] = mapped_column(primary_key=True)
    attestation_id: Mapped[int] = mapped_column(
        ForeignKey("attestations.id", ondelete="CASCADE"), unique=True
    )
    builder_id: Mapped[str | None] = mapped_column(Text, index=True)
    build_type: Mapped[str | None] = mapped_column(Text)
    source_uri: Mapped[str | None] = mapped_column(Text)
    source_digest: Mapped[str | None] = mapped_column(String(255))
    source_ref: Mapped[str | None] = mapped_column(Text)
    entry_point: Mapped[str | None] = mapped_column(Text)

    attestation: Mapped[Attestation] = relationship(back_populates="provenance")


class Sbom(Base):
    __tablename__ = "sboms"
    __table_args__ = (UniqueConstraint("attachment_digest", "layer_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attachment_digest: Mapped[str] = mapped_column(DIGEST, index=True)
    layer_digest: Mapped[str] = mapped_column(DIGEST)
    format: Mapped[str] = mapped_column(String(16))
    spec_version: Mapped[str | None] = mapped_column(String(16))
    tool: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    package_count: Mapped[int] = mapped_column(Integer, default=0)


class SbomPackage(Base):
    __tablename__ = "sbom_packages"
    __table_args__ = (
        Index("ix_sbom_packages_purl_base_version", "purl_base", "version"),
        Index("ix_sbom_packages_name_version", "name", "version"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sbom_id: Mapped[int] = mapped_column(ForeignKey("sboms.id", ondelete="CASCADE"), index=True)
    purl: Mapped[str | None] = mapped_column(Text)
    # The purl without version, qualifiers and subpath: what a version-less look-up matches.
    purl_base: Mapped[str | None] = mapped_column(String(512))
    type: Mapped[str | None] = mapped_column(String(64))
    namespace: Mapped[str | None] = mapped_column(String(512))
    name: Mapped[str] = mapped_column(String(512))
    version: Mapped[str | None] = mapped_column(String(255))
    licenses: Mapped[list[str]] = mapped_column(default=list)


class IndexErrorRecord(Base):
    """A document or manifest the indexer could not take in, and why."""

    __tablename__ = "index_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), index=True
    )
    repository: Mapped[str | None] = mapped_column(String(255))
    reference: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)


class UndecodableDocument(Base):
    """An attachment manifest none of whose documents could be decoded, and why. A digest names
    the same bytes forever, so a later crawl neither fetches nor decodes it again (it reports
    the reason again); a changed document is a new digest, and is tried."""

    __tablename__ = "undecodable_documents"

    digest: Mapped[str] = mapped_column(DIGEST, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Verification(Base):
    """A signature checked for one subject under one trust configuration (verify once, keep it).

    A new trust configuration (``trust_version``) needs new rows: that is how changing the trust
    configuration re-verifies what it affects.
    """

    __tablename__ = "verifications"
    __table_args__ = (UniqueConstraint("signature_id", "subject_digest", "trust_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    signature_id: Mapped[int] = mapped_column(
        ForeignKey("signatures.id", ondelete="CASCADE"), index=True
    )
    subject_digest: Mapped[str] = mapped_column(DIGEST, index=True)
    trust_version: Mapped[str] = mapped_column(String(64))
    verified: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(String(16))
    trust_root: Mapped[str | None] = mapped_column(String(255))
    identity: Mapped[str | None] = mapped_column(Text)
    issuer: Mapped[str | None] = mapped_column(Text)
    extensions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    key_fingerprint: Mapped[str | None] = mapped_column(String(64))
    log_index: Mapped[int | None] = mapped_column(BigInteger)
    log_id: Mapped[str | None] = mapped_column(String(128))
    integrated_time: Mapped[int | None] = mapped_column(BigInteger)
    predicate_type: Mapped[str | None] = mapped_column(String(255))
    signed_digests: Mapped[list[str]] = mapped_column(default=list)
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class Policy(Base):
    """A policy set, versioned: applying changed content adds a version; the newest is in force."""

    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DecisionRecord(Base):
    """The audit log: every gate decision, with its reasons and evidence."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    reference: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(DIGEST, index=True)
    policy_name: Mapped[str | None] = mapped_column(String(63))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    trust_version: Mapped[str] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean)
    mode: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[list[str]] = mapped_column(default=list)
    evidence: Mapped[list[str]] = mapped_column(JSON, default=list)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Who asked (``str(catalog.principals.current())`` when asked); None before migration 0005.
    principal: Mapped[str | None] = mapped_column(String(512))
    # Set when a Kubernetes admission review asked (migration 0006); None otherwise.
    namespace: Mapped[str | None] = mapped_column(String(253))
    object_ref: Mapped[str | None] = mapped_column(String(512))  # "Deployment/web"
    operation: Mapped[str | None] = mapped_column(String(16))  # CREATE, UPDATE
    requester: Mapped[str | None] = mapped_column(String(512))  # the review's userInfo.username
    dry_run: Mapped[bool | None] = mapped_column(Boolean)


class AuditEvent(Base):
    """A change someone made (catalog.store.audit): who, when, what kind, to which resource,
    and the resource's version before and after. Written in the transaction of the change."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    principal: Mapped[str] = mapped_column(String(512), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    resource: Mapped[str] = mapped_column(Text)  # the API's resource name of the target
    before: Mapped[str | None] = mapped_column(String(255))
    after: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
