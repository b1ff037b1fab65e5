"""Every RPC and HTTP route the server answers, and the permission it needs: deny by default.

A method missing from :data:`METHODS` is refused to everyone (tests/api/access enumerates the
services' descriptors and fails on a missing entry, so a new RPC cannot ship open). Roles are
sets of permissions (:data:`ROLE_PERMISSIONS`); bindings in the config give roles to principals.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from catalog.app.auth_config import Role


class Permission(StrEnum):
    OPEN = "open"  # no credentials needed: health probes
    READ = "read"  # Get/List/Resolve/Search/Watch; never a secret
    CHECK = "check"  # ask the gate about one image
    OPERATE = "operate"  # start work on what is configured: index, run a rule, evaluate
    ADMINISTER = "administer"  # change what is configured: policies, registries, rules
    NOTIFY = "notify"  # tell of pushes to a registry (they start index runs of those repositories)
    METRICS = "metrics"  # scrape /metrics: counts and names of what viewers may read


_CATALOG = "/xregistry.v1.CatalogService/"
_GATE = "/xregistry.v1.GateService/"
_REPLICATION = "/xregistry.v1.ReplicationService/"
_AUDIT = "/xregistry.v1.AuditService/"

METHODS: Mapping[str, Permission] = MappingProxyType(
    {
        # CatalogService
        _CATALOG + "CreateRegistry": Permission.ADMINISTER,
        _CATALOG + "GetRegistry": Permission.READ,
        _CATALOG + "ListRegistries": Permission.READ,
        _CATALOG + "DeleteRegistry": Permission.ADMINISTER,
        _CATALOG + "IndexRegistry": Permission.OPERATE,
        _CATALOG + "ListIndexErrors": Permission.READ,
        _CATALOG + "ListRepositories": Permission.READ,
        _CATALOG + "ListTags": Permission.READ,
        _CATALOG + "ListTagEvents": Permission.READ,
        _CATALOG + "GetArtifact": Permission.READ,
        _CATALOG + "ResolveArtifact": Permission.READ,
        _CATALOG + "ListReferrers": Permission.READ,
        _CATALOG + "SearchArtifactsByPackage": Permission.READ,
        # GateService
        _GATE + "CheckImage": Permission.CHECK,
        _GATE + "EvaluateCatalog": Permission.OPERATE,
        _GATE + "ApplyPolicy": Permission.ADMINISTER,
        _GATE + "ListPolicies": Permission.READ,
        # ReplicationService
        _REPLICATION + "CreateRule": Permission.ADMINISTER,
        _REPLICATION + "UpdateRule": Permission.ADMINISTER,
        _REPLICATION + "GetRule": Permission.READ,
        _REPLICATION + "ListRules": Permission.READ,
        _REPLICATION + "DeleteRule": Permission.ADMINISTER,
        _REPLICATION + "RunRule": Permission.OPERATE,
        _REPLICATION + "ListRuns": Permission.READ,
        _REPLICATION + "GetRun": Permission.READ,
        _REPLICATION + "WatchRun": Permission.READ,
        # AuditService: who did what is for readers (it holds no secret)
        _AUDIT + "ListAuditEvents": Permission.READ,
        # Probes stay open; reflection describes the API, so it needs a reader.
        "/grpc.health.v1.Health/Check": Permission.OPEN,
        "/grpc.health.v1.Health/Watch": Permission.OPEN,
        "/grpc.health.v1.Health/List": Permission.OPEN,
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Permission.READ,
    }
)

ENDPOINTS: Mapping[str, Permission] = MappingProxyType(
    {
        # The HTTP listeners' routes, as "METHOD /path" (the route's pattern), deny by default
        # like METHODS: a route without an entry answers 403 to everyone.
        "POST /events/distribution/{registry}": Permission.NOTIFY,
        "GET /metrics": Permission.METRICS,
        # Kubernetes admission: the API server asks about images, as the gate role does.
        "POST /admission/validate": Permission.CHECK,
        "POST /admission/mutate": Permission.CHECK,
    }
)

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.VIEWER: frozenset({Permission.READ, Permission.METRICS}),
        Role.GATE: frozenset({Permission.CHECK}),
        Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE, Permission.METRICS}),
        Role.NOTIFIER: frozenset({Permission.NOTIFY}),
        Role.METRICS: frozenset({Permission.METRICS}),
        Role.ADMIN: frozenset(Permission),
    }
)
