"""The catalog's records as the store answers them: plain dataclasses, no SQL.

Apart from the queries (catalog/store/queries.py, which re-exports them) so that what only
presents or converts records (the CLI with ``--server``, the API's conversions) does not import
SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Row

    from catalog.store.models import IndexErrorRecord, Policy, Registry, Repository, Tag

T = TypeVar("T")

DEFAULT_POLICY = "default"
"""The policy set the gate decides with when none is named."""


class AuditKind(StrEnum):
    POLICY_APPLIED = "policy.applied"
    REGISTRY_CREATED = "registry.created"
    REGISTRY_UPDATED = "registry.updated"  # the serve configuration changed it
    REGISTRY_DELETED = "registry.deleted"
    RULE_CREATED = "rule.created"
    RULE_UPDATED = "rule.updated"
    RULE_DELETED = "rule.deleted"
    RUN_TRIGGERED = "run.triggered"
    INDEX_STARTED = "index.started"  # a registry's crawl: what it fetches, and from where


class IndexStatus(StrEnum):
    """Where a registry's last index run is (``registries.last_index_status``); None: never
    indexed."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the run got to the end (per-repository errors are counted apart)
    FAILED = "failed"  # the run stopped early: unreachable, refused, interrupted


@dataclass(frozen=True, slots=True)
class RegistrySpec:
    """What a user says about a registry (config file, CLI, API)."""

    name: str
    host: str
    insecure: bool = False
    ca_file: str | None = None  # the name of a CA file in the process's secrets
    credentials_ref: str | None = None  # the name of a credential in the process's secrets
    repositories: tuple[str, ...] = ()  # catalog.oci.globs; empty means every repository
    index_schedule: str | None = None


Key = tuple[str | int, ...]
"""Where a page ended: the sort key of its last row, then the row id (or the id alone)."""


@dataclass(frozen=True, slots=True)
class PlatformView:
    digest: str
    os: str | None
    architecture: str | None
    variant: str | None


@dataclass(frozen=True, slots=True)
class LocationView:
    registry: str
    repository: str
    tags: list[str]
    first_seen: datetime
    last_seen: datetime
    gone: bool


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
class ProvenanceView:
    builder_id: str | None
    build_type: str | None
    source_uri: str | None
    source_digest: str | None
    source_ref: str | None
    entry_point: str | None


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


@dataclass(frozen=True, slots=True)
class PackageView:
    purl: str | None
    type: str | None
    namespace: str | None
    name: str
    version: str | None
    licenses: list[str]


@dataclass(frozen=True, slots=True)
class PackageMatch:
    package: PackageView
    artifact_digest: str
    locations: list[LocationView]


@dataclass(frozen=True, slots=True)
class TagEventView:
    tag: str
    old_digest: str | None
    new_digest: str | None
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class RegistryView:
    name: str
    host: str
    insecure: bool
    ca_file: str | None
    credentials_ref: str | None
    repositories: list[str]
    index_schedule: str | None
    last_index_at: datetime | None  # when the last run ended
    last_index_status: IndexStatus | None  # None: never indexed
    last_index_started_at: datetime | None = None
    last_index_error: str | None = None  # why the last run failed
    last_index_errors: int | None = None  # index errors the last run recorded

    @classmethod
    def of(cls, row: Registry | Row[Any]) -> RegistryView:
        return cls(
            row.name,
            row.host,
            row.insecure,
            row.ca_file,
            row.credentials_ref,
            list(row.repositories_filter),
            row.index_schedule,
            row.last_index_at,
            IndexStatus(row.last_index_status) if row.last_index_status else None,
            row.last_index_started_at,
            row.last_index_error,
            row.last_index_errors,
        )


@dataclass(frozen=True, slots=True)
class RepositoryView:
    name: str
    first_seen: datetime
    last_indexed_at: datetime | None
    gone_at: datetime | None

    @classmethod
    def of(cls, row: Repository | Row[Any]) -> RepositoryView:
        return cls(row.name, row.first_seen, row.last_indexed_at, row.gone_at)


@dataclass(frozen=True, slots=True)
class TagView:
    name: str
    digest: str
    updated_at: datetime
    gone_at: datetime | None

    @classmethod
    def of(cls, row: Tag | Row[Any]) -> TagView:
        return cls(row.name, row.digest, row.updated_at, row.gone_at)


@dataclass(frozen=True, slots=True)
class IndexErrorView:
    repository: str | None
    reference: str | None
    reason: str
    observed_at: datetime

    @classmethod
    def of(cls, row: IndexErrorRecord | Row[Any]) -> IndexErrorView:
        return cls(row.repository, row.reference, row.reason, row.observed_at)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_after: Key | None  # pass back as ``after`` for the next page; None at the end


@dataclass(frozen=True, slots=True)
class PolicyView:
    name: str
    version: int
    digest: str
    source: str
    created_at: datetime

    @classmethod
    def of(cls, row: Policy | Row[Any]) -> PolicyView:
        return cls(row.name, row.version, row.digest, row.source, row.created_at)
