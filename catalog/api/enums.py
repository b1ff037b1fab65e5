"""The domain's enumerations ↔ the ``xregistry.v1`` enums, each table written once.

The servicers use :meth:`EnumTable.proto` (domain → wire) and the CLI's ``--server`` backends
:meth:`EnumTable.domain` (wire → domain), so both edges speak the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from catalog.api.v1 import audit_pb2, catalog_pb2, gate_pb2, replication_pb2
from catalog.store.views import AuditKind, IndexStatus
from replication.statuses import RuleOrigin, RunStatus, TaskStatus, Trigger

K = TypeVar("K", bound=str)
V = TypeVar("V", bound=int)


class EnumTable(Generic[K, V]):
    """One domain enumeration (string values) and its proto enum (``V``), both ways."""

    def __init__(self, pairs: Mapping[K, V], unspecified: V) -> None:
        self._to_proto: dict[str, V] = {str(value): number for value, number in pairs.items()}
        self._to_domain: dict[int, K] = {number: value for value, number in pairs.items()}
        self.unspecified = unspecified

    def proto(self, value: str | None) -> V:
        """The proto number of ``value``; the unspecified one for None or a value it lacks."""
        if value is None:
            return self.unspecified
        return self._to_proto.get(value, self.unspecified)

    def domain(self, number: int) -> K | None:
        """The domain value of a proto number; None for unspecified (or a number from a newer
        server that this client does not know)."""
        return self._to_domain.get(number)


INDEX_STATUS = EnumTable(
    {
        IndexStatus.RUNNING: catalog_pb2.INDEX_STATUS_RUNNING,
        IndexStatus.SUCCEEDED: catalog_pb2.INDEX_STATUS_SUCCEEDED,
        IndexStatus.FAILED: catalog_pb2.INDEX_STATUS_FAILED,
    },
    catalog_pb2.INDEX_STATUS_UNSPECIFIED,
)
ATTACHMENT_KIND = EnumTable(
    {
        "signature": catalog_pb2.ATTACHMENT_KIND_SIGNATURE,
        "attestation": catalog_pb2.ATTACHMENT_KIND_ATTESTATION,
        "sbom": catalog_pb2.ATTACHMENT_KIND_SBOM,
        "other": catalog_pb2.ATTACHMENT_KIND_OTHER,
    },
    unspecified=catalog_pb2.ATTACHMENT_KIND_OTHER,  # a kind this server has no name for
)
ATTACHMENT_SCHEME = EnumTable(
    {
        "referrers-api": catalog_pb2.ATTACHMENT_SCHEME_REFERRERS_API,
        "fallback-tag": catalog_pb2.ATTACHMENT_SCHEME_FALLBACK_TAG,
        "cosign-tag": catalog_pb2.ATTACHMENT_SCHEME_COSIGN_TAG,
        "in-index": catalog_pb2.ATTACHMENT_SCHEME_IN_INDEX,
        "layout-index": catalog_pb2.ATTACHMENT_SCHEME_LAYOUT_INDEX,
        "subject-field": catalog_pb2.ATTACHMENT_SCHEME_SUBJECT_FIELD,
    },
    catalog_pb2.ATTACHMENT_SCHEME_UNSPECIFIED,
)
POLICY_MODE = EnumTable(
    {"enforce": gate_pb2.POLICY_MODE_ENFORCE, "warn": gate_pb2.POLICY_MODE_WARN},
    gate_pb2.POLICY_MODE_UNSPECIFIED,
)
VERIFICATION_METHOD = EnumTable(
    {
        "keyless": gate_pb2.VERIFICATION_METHOD_KEYLESS,
        "key": gate_pb2.VERIFICATION_METHOD_KEY,
        "pki": gate_pb2.VERIFICATION_METHOD_PKI,
    },
    gate_pb2.VERIFICATION_METHOD_UNSPECIFIED,
)
RUN_STATUS = EnumTable(
    {
        RunStatus.PENDING: replication_pb2.RUN_STATUS_PENDING,
        RunStatus.PLANNING: replication_pb2.RUN_STATUS_PLANNING,
        RunStatus.RUNNING: replication_pb2.RUN_STATUS_RUNNING,
        RunStatus.SUCCEEDED: replication_pb2.RUN_STATUS_SUCCEEDED,
        RunStatus.FAILED: replication_pb2.RUN_STATUS_FAILED,
    },
    replication_pb2.RUN_STATUS_UNSPECIFIED,
)
TASK_STATUS = EnumTable(
    {
        TaskStatus.PENDING: replication_pb2.TASK_STATUS_PENDING,
        TaskStatus.RUNNING: replication_pb2.TASK_STATUS_RUNNING,
        TaskStatus.COPIED: replication_pb2.TASK_STATUS_COPIED,
        TaskStatus.SKIPPED: replication_pb2.TASK_STATUS_SKIPPED,
        TaskStatus.FAILED: replication_pb2.TASK_STATUS_FAILED,
        TaskStatus.CONFLICT: replication_pb2.TASK_STATUS_CONFLICT,
        TaskStatus.DENIED: replication_pb2.TASK_STATUS_DENIED,
    },
    replication_pb2.TASK_STATUS_UNSPECIFIED,
)
TRIGGER = EnumTable(
    {
        Trigger.MANUAL: replication_pb2.RUN_TRIGGER_MANUAL,
        Trigger.SCHEDULE: replication_pb2.RUN_TRIGGER_SCHEDULE,
        Trigger.INDEX: replication_pb2.RUN_TRIGGER_INDEX,
    },
    replication_pb2.RUN_TRIGGER_UNSPECIFIED,
)
RULE_ORIGIN = EnumTable(
    {
        RuleOrigin.API: replication_pb2.RULE_ORIGIN_API,
        RuleOrigin.CONFIG: replication_pb2.RULE_ORIGIN_CONFIG,
    },
    replication_pb2.RULE_ORIGIN_UNSPECIFIED,
)
CONFLICT = EnumTable(
    {
        "overwrite": replication_pb2.CONFLICT_POLICY_OVERWRITE,
        "report": replication_pb2.CONFLICT_POLICY_REPORT,
    },
    replication_pb2.CONFLICT_POLICY_UNSPECIFIED,
)
NEWEST_BY = EnumTable(
    {"tag": replication_pb2.NEWEST_BY_TAG, "created": replication_pb2.NEWEST_BY_CREATED},
    replication_pb2.NEWEST_BY_UNSPECIFIED,
)
AUDIT_KIND = EnumTable(
    {
        AuditKind.POLICY_APPLIED: audit_pb2.AUDIT_EVENT_KIND_POLICY_APPLIED,
        AuditKind.REGISTRY_CREATED: audit_pb2.AUDIT_EVENT_KIND_REGISTRY_CREATED,
        AuditKind.REGISTRY_UPDATED: audit_pb2.AUDIT_EVENT_KIND_REGISTRY_UPDATED,
        AuditKind.REGISTRY_DELETED: audit_pb2.AUDIT_EVENT_KIND_REGISTRY_DELETED,
        AuditKind.RULE_CREATED: audit_pb2.AUDIT_EVENT_KIND_RULE_CREATED,
        AuditKind.RULE_UPDATED: audit_pb2.AUDIT_EVENT_KIND_RULE_UPDATED,
        AuditKind.RULE_DELETED: audit_pb2.AUDIT_EVENT_KIND_RULE_DELETED,
        AuditKind.RUN_TRIGGERED: audit_pb2.AUDIT_EVENT_KIND_RUN_TRIGGERED,
        AuditKind.INDEX_STARTED: audit_pb2.AUDIT_EVENT_KIND_INDEX_STARTED,
    },
    audit_pb2.AUDIT_EVENT_KIND_UNSPECIFIED,
)
