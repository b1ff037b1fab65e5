"""SQLAlchemy 2 ORM classes of the catalog, for the writers.

Each class is mapped onto its table in catalog.store.schema (the one schema definition, in
Core, which the read side uses without the ORM); the annotations here type the attributes, the
columns are the table's. Schema changes go through Alembic migrations in ``migrations/`` only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from catalog.store import schema
from catalog.store.schema import DIGEST as DIGEST
from catalog.store.schema import utcnow as utcnow
from catalog.store.timestamps import UTCDateTime


class Base(DeclarativeBase):
    metadata = schema.metadata
    # For the classes declared with mapped_column on this Base (replication.models).
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


def table_of(model: type[Base]) -> Table:
    """The model's table, for Core statements on hot paths."""
    table: Table = model.__table__  # type: ignore[assignment]
    return table


class Registry(Base):
    __table__ = schema.registries

    id: Mapped[int]
    name: Mapped[str]
    host: Mapped[str]
    insecure: Mapped[bool]
    # The names of a CA file and of credentials in the process's secrets (catalog.oci.secrets),
    # never a path, a variable or the secret itself; rows from before names stay as they were
    # and are refused when opened.
    ca_file: Mapped[str | None]
    credentials_ref: Mapped[str | None]
    repositories_filter: Mapped[list[str]]
    index_schedule: Mapped[str | None]
    created_at: Mapped[datetime]
    # The last index run (or the one under way): an IndexStatus (catalog.store.registries),
    # when it started and ended, why it failed, and how many index errors it recorded.
    last_index_status: Mapped[str | None]
    last_index_started_at: Mapped[datetime | None]
    last_index_at: Mapped[datetime | None]
    last_index_error: Mapped[str | None]
    last_index_errors: Mapped[int | None]

    repositories: Mapped[list[Repository]] = relationship(
        back_populates="owner", cascade="all, delete-orphan", passive_deletes=True
    )


class Repository(Base):
    __table__ = schema.repositories

    id: Mapped[int]
    registry_id: Mapped[int]
    name: Mapped[str]
    first_seen: Mapped[datetime]
    last_indexed_at: Mapped[datetime | None]
    gone_at: Mapped[datetime | None]

    # Not "registry": DeclarativeBase reserves that name.
    owner: Mapped[Registry] = relationship(back_populates="repositories")


class Manifest(Base):
    __table__ = schema.manifests

    digest: Mapped[str]
    media_type: Mapped[str]
    artifact_type: Mapped[str | None]
    size: Mapped[int]
    subject_digest: Mapped[str | None]
    config_digest: Mapped[str | None]
    raw: Mapped[bytes]
    first_seen: Mapped[datetime]


class ManifestLocation(Base):
    __table__ = schema.manifest_locations

    id: Mapped[int]
    repository_id: Mapped[int]
    digest: Mapped[str]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    gone_at: Mapped[datetime | None]


class Tag(Base):
    __table__ = schema.tags

    id: Mapped[int]
    repository_id: Mapped[int]
    name: Mapped[str]
    digest: Mapped[str]
    updated_at: Mapped[datetime]
    gone_at: Mapped[datetime | None]


class TagEvent(Base):
    """A tag observed pointing somewhere new: created (old None), moved, or gone (new None)."""

    __table__ = schema.tag_events

    id: Mapped[int]
    tag_id: Mapped[int]
    old_digest: Mapped[str | None]
    new_digest: Mapped[str | None]
    observed_at: Mapped[datetime]


class IndexChild(Base):
    __table__ = schema.index_children

    parent_digest: Mapped[str]
    child_digest: Mapped[str]
    position: Mapped[int]
    media_type: Mapped[str]
    os: Mapped[str | None]
    architecture: Mapped[str | None]
    variant: Mapped[str | None]
    # BuildKit attestation manifests are children too; this says which image one describes.
    attests_digest: Mapped[str | None]


class Attachment(Base):
    """``attachment_digest`` is attached to ``subject_digest``, found by ``scheme``."""

    __table__ = schema.attachments

    id: Mapped[int]
    subject_digest: Mapped[str]
    attachment_digest: Mapped[str]
    kind: Mapped[str]
    scheme: Mapped[str]
    artifact_type: Mapped[str | None]
    first_seen: Mapped[datetime]


class Signature(Base):
    __table__ = schema.signatures

    id: Mapped[int]
    attachment_digest: Mapped[str]
    layer_digest: Mapped[str]
    format: Mapped[str]
    identity: Mapped[str | None]
    issuer: Mapped[str | None]
    extensions: Mapped[dict[str, Any]]
    key_id: Mapped[str | None]
    log_index: Mapped[int | None]
    integrated_time: Mapped[int | None]
    signed_digests: Mapped[list[str]]
    # What verification needs later: the layer blob and its annotations, exactly as found.
    layer_media_type: Mapped[str]
    layer: Mapped[bytes]
    annotations: Mapped[dict[str, Any]]


class Attestation(Base):
    __table__ = schema.attestations

    id: Mapped[int]
    attachment_digest: Mapped[str]
    layer_digest: Mapped[str]
    predicate_type: Mapped[str]
    subject_digests: Mapped[list[str]]
    statement: Mapped[dict[str, Any]]

    provenance: Mapped[Provenance | None] = relationship(
        back_populates="attestation", cascade="all, delete-orphan", passive_deletes=True
    )


class Provenance(Base):
    __table__ = schema.provenance

    id: Mapped[int]
    attestation_id: Mapped[int]
    builder_id: Mapped[str | None]
    build_type: Mapped[str | None]
    source_uri: Mapped[str | None]
    source_digest: Mapped[str | None]
    source_ref: Mapped[str | None]
    entry_point: Mapped[str | None]

    attestation: Mapped[Attestation] = relationship(back_populates="provenance")


class Sbom(Base):
    __table__ = schema.sboms

    id: Mapped[int]
    attachment_digest: Mapped[str]
    layer_digest: Mapped[str]
    format: Mapped[str]
    spec_version: Mapped[str | None]
    tool: Mapped[str | None]
    name: Mapped[str | None]
    package_count: Mapped[int]


class SbomPackage(Base):
    __table__ = schema.sbom_packages

    id: Mapped[int]
    sbom_id: Mapped[int]
    purl: Mapped[str | None]
    # The purl without version, qualifiers and subpath: what a version-less look-up matches.
    purl_base: Mapped[str | None]
    type: Mapped[str | None]
    namespace: Mapped[str | None]
    name: Mapped[str]
    version: Mapped[str | None]
    licenses: Mapped[list[str]]
    # ``package_keys.package_key`` of purl_base (name) and version: the look-up indexes' keys.
    purl_key: Mapped[int | None]
    name_key: Mapped[int | None]


class IndexErrorRecord(Base):
    """A document or manifest the indexer could not take in, and why."""

    __table__ = schema.index_errors

    id: Mapped[int]
    registry_id: Mapped[int]
    repository: Mapped[str | None]
    reference: Mapped[str | None]
    reason: Mapped[str]
    observed_at: Mapped[datetime]


class UndecodableDocument(Base):
    """An attachment manifest none of whose documents could be decoded, and why. A digest names
    the same bytes forever, so a later crawl neither fetches nor decodes it again (it reports
    the reason again); a changed document is a new digest, and is tried."""

    __table__ = schema.undecodable_documents

    digest: Mapped[str]
    reason: Mapped[str]
    observed_at: Mapped[datetime]


class Verification(Base):
    """A signature checked for one subject under one trust configuration (verify once, keep it).

    A new trust configuration (``trust_version``) needs new rows: that is how changing the trust
    configuration re-verifies what it affects.
    """

    __table__ = schema.verifications

    id: Mapped[int]
    signature_id: Mapped[int]
    subject_digest: Mapped[str]
    trust_version: Mapped[str]
    verified: Mapped[bool]
    reason: Mapped[str]
    method: Mapped[str | None]
    trust_root: Mapped[str | None]
    identity: Mapped[str | None]
    issuer: Mapped[str | None]
    extensions: Mapped[dict[str, Any]]
    key_fingerprint: Mapped[str | None]
    log_index: Mapped[int | None]
    log_id: Mapped[str | None]
    integrated_time: Mapped[int | None]
    predicate_type: Mapped[str | None]
    signed_digests: Mapped[list[str]]
    verified_at: Mapped[datetime]


class Policy(Base):
    """A policy set, versioned: applying changed content adds a version; the newest is in force."""

    __table__ = schema.policies

    id: Mapped[int]
    name: Mapped[str]
    version: Mapped[int]
    digest: Mapped[str]
    source: Mapped[str]
    canonical: Mapped[str | None]
    created_at: Mapped[datetime]


class DecisionRecord(Base):
    """The audit log: every gate decision, with its reasons and evidence."""

    __table__ = schema.decisions

    id: Mapped[int]
    reference: Mapped[str]
    digest: Mapped[str]
    policy_name: Mapped[str | None]
    policy_version: Mapped[int | None]
    trust_version: Mapped[str]
    allowed: Mapped[bool]
    mode: Mapped[str | None]
    reasons: Mapped[list[str]]
    evidence: Mapped[list[str]]
    cached: Mapped[bool]
    decided_at: Mapped[datetime]
    # Who asked (``str(catalog.principals.current())`` when asked); None before migration 0005.
    principal: Mapped[str | None]
    # Set when a Kubernetes admission review asked (migration 0006); None otherwise.
    namespace: Mapped[str | None]
    object_ref: Mapped[str | None]
    operation: Mapped[str | None]
    requester: Mapped[str | None]
    dry_run: Mapped[bool | None]


class AuditEvent(Base):
    """A change someone made (catalog.store.audit): who, when, what kind, to which resource,
    and the resource's version before and after. Written in the transaction of the change."""

    __table__ = schema.audit_events

    id: Mapped[int]
    occurred_at: Mapped[datetime]
    principal: Mapped[str]
    kind: Mapped[str]
    resource: Mapped[str]
    before: Mapped[str | None]
    after: Mapped[str | None]
    detail: Mapped[str | None]
