"""The catalog's records as the store answers them: plain dataclasses, no SQL.

Apart from the queries (catalog/store/queries.py, which re-exports them) so that what only
presents or converts records (the CLI with ``--server``, the API's conversions) does not import
SQLAlchemy. Each record (or the few shown together) lives in a private module loaded on first
use: a frozen dataclass costs ~4.5M instructions to create (its methods' source compiled at
import), ~0.4% of a command's start, and a command shows a few (``registry list``: 1 of 17).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.store._artifact_views import (
        ArtifactView,
        AttachmentView,
        AttestationView,
        PlatformView,
        SbomView,
        SignatureView,
    )
    from catalog.store._package_views import LocationView, PackageMatch, PackageView
    from catalog.store._policy_views import PolicyView
    from catalog.store._provenance_views import ProvenanceView
    from catalog.store._registry_spec import RegistrySpec
    from catalog.store._registry_views import RegistryView
    from catalog.store._repository_views import IndexErrorView, RepositoryView
    from catalog.store._tag_event_views import TagEventView
    from catalog.store._tag_views import TagView

__all__ = [
    "DEFAULT_POLICY",
    "ArtifactView",
    "AttachmentView",
    "AttestationView",
    "AuditKind",
    "IndexErrorView",
    "IndexStatus",
    "Key",
    "LocationView",
    "PackageMatch",
    "PackageView",
    "Page",
    "PlatformView",
    "PolicyView",
    "ProvenanceView",
    "RegistrySpec",
    "RegistryView",
    "RepositoryView",
    "SbomView",
    "SignatureView",
    "TagEventView",
    "TagView",
]
__getattr__ = lazy_exports(
    "catalog.store",
    {
        "RegistrySpec": "_registry_spec",
        "RegistryView": "_registry_views",
        "RepositoryView": "_repository_views",
        "IndexErrorView": "_repository_views",
        "TagView": "_tag_views",
        "TagEventView": "_tag_event_views",
        "PolicyView": "_policy_views",
        "LocationView": "_package_views",
        "PackageView": "_package_views",
        "PackageMatch": "_package_views",
        "PlatformView": "_artifact_views",
        "AttachmentView": "_artifact_views",
        "SignatureView": "_artifact_views",
        "ProvenanceView": "_provenance_views",
        "AttestationView": "_artifact_views",
        "SbomView": "_artifact_views",
        "ArtifactView": "_artifact_views",
    },
    module=__name__,
)

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


Key = tuple[str | int, ...]
"""Where a page ended: the sort key of its last row, then the row id (or the id alone)."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_after: Key | None  # pass back as ``after`` for the next page; None at the end
