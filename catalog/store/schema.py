"""The catalog's tables, in SQLAlchemy Core: the one schema definition.

The read side (catalog.store.queries) selects from these tables without the ORM, so that a
command that only reads never imports ``sqlalchemy.orm`` nor configures mappers; the ORM classes
of catalog.store.models are mapped onto these same tables for the writers. Content-addressed at
the core: a manifest is one row per digest wherever it lives; where it lives is
``manifest_locations``. Attachment documents (signatures, attestations, SBOMs) hang off the
digest of the attachment manifest, so the same signature found in two registries is decoded
once. Schema changes go through Alembic migrations in ``migrations/`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
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

from catalog.store.package_keys import package_key
from catalog.store.timestamps import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.engine.default import DefaultExecutionContext

DIGEST = String(160)  # "sha512:" + 128 hex fits
# 64-bit keys for the tables that grow without bound; SQLite's rowid is INTEGER.
BIG_ID = BigInteger().with_variant(Integer, "sqlite")


# The execution option naming the table a driver-level statement (SQL text, past SQLAlchemy's
# compiler) writes, so that a listener (the gate's state cache) knows what changed without
# reading the SQL text. Set per statement, never on a connection or engine: every later text
# statement there would inherit it.
WRITTEN_TABLE = "xregistry_written_table"


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


registries = Table(
    "registries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("insecure", Boolean, nullable=False, default=False),
    Column("ca_file", String(1024)),
    Column("credentials_ref", String(1024)),
    Column("repositories_filter", JSON, nullable=False, default=list),
    Column("index_schedule", String(255)),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("last_index_status", Text),
    Column("last_index_started_at", UTCDateTime),
    Column("last_index_at", UTCDateTime),
    Column("last_index_error", Text),
    Column("last_index_errors", Integer),
)


repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", Integer, ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False, default=utcnow),
    Column("last_indexed_at", UTCDateTime),
    Column("gone_at", UTCDateTime),
    UniqueConstraint("registry_id", "name"),
)


manifests = Table(
    "manifests",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("media_type", String(255), nullable=False),
    Column("artifact_type", String(255)),
    Column("size", BigInteger, nullable=False),
    Column("subject_digest", DIGEST, index=True),
    Column("config_digest", DIGEST),
    Column("raw", LargeBinary, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False, default=utcnow),
)


manifest_locations = Table(
    "manifest_locations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("digest", DIGEST, ForeignKey("manifests.digest"), nullable=False, index=True),
    Column("first_seen", UTCDateTime, nullable=False, default=utcnow),
    Column("last_seen", UTCDateTime, nullable=False, default=utcnow),
    Column("gone_at", UTCDateTime),
    UniqueConstraint("repository_id", "digest"),
)


tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(128), nullable=False),
    Column("digest", DIGEST, nullable=False, index=True),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    Column("gone_at", UTCDateTime),
    UniqueConstraint("repository_id", "name"),
)


tag_events = Table(
    "tag_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "tag_id", Integer, ForeignKey("tags.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("old_digest", DIGEST),
    Column("new_digest", DIGEST),
    Column("observed_at", UTCDateTime, nullable=False, default=utcnow),
)


index_children = Table(
    "index_children",
    metadata,
    Column("parent_digest", DIGEST, ForeignKey("manifests.digest"), primary_key=True),
    Column("child_digest", DIGEST, primary_key=True, index=True),
    Column("position", Integer, nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("os", String(64)),
    Column("architecture", String(64)),
    Column("variant", String(64)),
    Column("attests_digest", DIGEST),
)


attachments = Table(
    "attachments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subject_digest", DIGEST, nullable=False, index=True),
    Column("attachment_digest", DIGEST, nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("artifact_type", String(255)),
    Column("first_seen", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("subject_digest", "attachment_digest"),
)


signatures = Table(
    "signatures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("attachment_digest", DIGEST, nullable=False, index=True),
    Column("layer_digest", DIGEST, nullable=False),
    Column("format", String(32), nullable=False),
    Column("identity", Text),
    Column("issuer", Text),
    Column("extensions", JSON, nullable=False, default=dict),
    Column("key_id", String(255)),
    Column("log_index", BigInteger),
    Column("integrated_time", BigInteger),
    Column("signed_digests", JSON, nullable=False, default=list),
    Column("layer_media_type", String(255), nullable=False),
    Column("layer", LargeBinary, nullable=False),
    Column("annotations", JSON, nullable=False, default=dict),
    UniqueConstraint("attachment_digest", "layer_digest"),
)


attestations = Table(
    "attestations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("attachment_digest", DIGEST, nullable=False, index=True),
    Column("layer_digest", DIGEST, nullable=False),
    Column("predicate_type", String(255), nullable=False, index=True),
    Column("subject_digests", JSON, nullable=False, default=list),
    Column("statement", JSON, nullable=False, default=dict),
    UniqueConstraint("attachment_digest", "layer_digest"),
)


provenance = Table(
    "provenance",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "attestation_id",
        Integer,
        ForeignKey("attestations.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("builder_id", Text, index=True),
    Column("build_type", Text),
    Column("source_uri", Text),
    Column("source_digest", String(255)),
    Column("source_ref", Text),
    Column("entry_point", Text),
)


sboms = Table(
    "sboms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("attachment_digest", DIGEST, nullable=False, index=True),
    Column("layer_digest", DIGEST, nullable=False),
    Column("format", String(16), nullable=False),
    Column("spec_version", String(16)),
    Column("tool", Text),
    Column("name", Text),
    Column("package_count", Integer, nullable=False, default=0),
    UniqueConstraint("attachment_digest", "layer_digest"),
)


def _key_of(head: str) -> Callable[[DefaultExecutionContext], int | None]:
    def key(context: DefaultExecutionContext) -> int | None:
        row: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
        return package_key(row.get(head), row.get("version"))

    return key


sbom_packages = Table(
    "sbom_packages",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    # Not a foreign key, not indexed: its check cost a PostgreSQL query a row (migration 0010).
    Column("sbom_id", Integer, nullable=False),
    Column("purl", Text),
    Column("purl_base", String(512)),
    Column("type", String(64)),
    Column("namespace", String(512)),
    Column("name", String(512), nullable=False),
    Column("version", String(255)),
    Column("licenses", JSON, nullable=False, default=list),
    # What look-ups find rows by (``package_keys``): purl base or name, with the version, in one
    # integer. Filled from the strings when an insert does not give them.
    Column("purl_key", BigInteger, default=_key_of("purl_base")),
    Column("name_key", BigInteger, default=_key_of("name")),
    Index("ix_sbom_packages_purl_key", "purl_key"),
    Index("ix_sbom_packages_name_key", "name_key"),
)


index_errors = Table(
    "index_errors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "registry_id",
        Integer,
        ForeignKey("registries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("repository", String(255)),
    Column("reference", String(255)),
    Column("reason", Text, nullable=False),
    Column("observed_at", UTCDateTime, nullable=False, default=utcnow),
)


undecodable_documents = Table(
    "undecodable_documents",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("observed_at", UTCDateTime, nullable=False, default=utcnow),
)


verifications = Table(
    "verifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "signature_id",
        Integer,
        ForeignKey("signatures.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("subject_digest", DIGEST, nullable=False, index=True),
    Column("trust_version", String(64), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("method", String(16)),
    Column("trust_root", String(255)),
    Column("identity", Text),
    Column("issuer", Text),
    Column("extensions", JSON, nullable=False, default=dict),
    Column("key_fingerprint", String(64)),
    Column("log_index", BigInteger),
    Column("log_id", String(128)),
    Column("integrated_time", BigInteger),
    Column("predicate_type", String(255)),
    Column("signed_digests", JSON, nullable=False, default=list),
    Column("verified_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("signature_id", "subject_digest", "trust_version"),
)


policies = Table(
    "policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(63), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("source", Text, nullable=False),
    # The canonical JSON the source validated to (sha256: digest): the gate compiles a stored
    # set from it, without parsing the source again. NULL for sets applied before 0008.
    Column("canonical", Text),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("name", "version"),
)


decisions = Table(
    "decisions",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("reference", Text, nullable=False),
    Column("digest", DIGEST, nullable=False, index=True),
    Column("policy_name", String(63)),
    Column("policy_version", Integer),
    Column("trust_version", String(64), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("mode", String(16)),
    Column("reasons", JSON, nullable=False, default=list),
    Column("evidence", JSON, nullable=False, default=list),
    Column("cached", Boolean, nullable=False, default=False),
    Column("decided_at", UTCDateTime, nullable=False, index=True, default=utcnow),
    Column("principal", String(512)),
    Column("namespace", String(253)),
    Column("object_ref", String(512)),
    Column("operation", String(16)),
    Column("requester", String(512)),
    Column("dry_run", Boolean),
)


audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("occurred_at", UTCDateTime, nullable=False, index=True, default=utcnow),
    Column("principal", String(512), nullable=False, index=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("resource", Text, nullable=False),
    Column("before", String(255)),
    Column("after", String(255)),
    Column("detail", Text),
)
