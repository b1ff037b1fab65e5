"""Who changed what: audit events, recorded in the transaction of the change they describe.

The domain services call :func:`record` with the session that makes the change, so an event
exists exactly when its change was committed (a change that rolls back leaves none) and the CLI
working on the database records its local user as the server records an API caller. The
principal is ``str(catalog.principals.current())`` unless the caller names one (the server's
own schedules).

Resources are named as the API names them (``catalog/api/names.py``: ``registries/{registry}``,
``policies/{policy}``, ``rules/{rule}``, ``rules/{rule}/runs/{run}``); the store cannot import
the API, so the few forms it writes are spelled here. ``before`` and ``after`` are versions of
the resource: a policy set's version number, the digest of a registry's or a rule's settings,
a run's or an index run's status; None where the resource did not exist (before a creation,
after a deletion).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from catalog.errors import InvalidArgument

# Re-exported: defined beside the principal, for the decision log to import without this module.
from catalog.principals import PRINCIPAL_MAX as PRINCIPAL_MAX
from catalog.principals import Principal
from catalog.principals import principal_text as principal_text
from catalog.store.queries import Key, Page, Reads, keyset_page, views_of
from catalog.store.schema import audit_events, utcnow

# Re-exported: the kind lives apart from SQL (catalog/store/views.py) for light importers.
from catalog.store.views import AuditKind as AuditKind

if TYPE_CHECKING:
    from sqlalchemy import Row

    from catalog.store.models import Registry


@dataclass(frozen=True, slots=True)
class AuditEventView:
    id: int
    occurred_at: datetime
    principal: str
    kind: AuditKind
    resource: str
    before: str | None
    after: str | None
    detail: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> AuditEventView:
        return cls(
            id=row.id,
            occurred_at=row.occurred_at,
            principal=row.principal,
            kind=AuditKind(row.kind),
            resource=row.resource,
            before=row.before,
            after=row.after,
            detail=row.detail,
        )


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events to list: all of them when every field is None. ``since`` is inclusive,
    ``until`` exclusive."""

    principal: str | None = None
    kind: AuditKind | None = None
    since: datetime | None = None
    until: datetime | None = None


def record(
    session: Reads,
    kind: AuditKind,
    resource: str,
    before: str | None,
    after: str | None,
    detail: str | None = None,
    principal: Principal | None = None,
) -> None:
    """Add the event to ``session``'s transaction: it commits or rolls back with the change."""
    session.execute(
        insert(audit_events).values(
            occurred_at=utcnow(),
            principal=principal_text(principal),
            kind=kind,
            resource=resource,
            before=before,
            after=after,
            detail=detail,
        )
    )


def list_events(
    session: Reads, where: AuditFilter, size: int, after: Key | None = None
) -> Page[AuditEventView]:
    """Newest first (by id: the order the changes were recorded); ``after`` is the
    ``next_after`` of the page before: ``(event id,)``."""
    event = audit_events.c
    query = select(audit_events)
    if where.principal is not None:
        query = query.where(event.principal == where.principal)
    if where.kind is not None:
        query = query.where(event.kind == where.kind)
    if where.since is not None:
        query = query.where(event.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(event.occurred_at < where.until)
    start = None if after is None else (_event_id(after),)
    page = keyset_page(session, query, (event.id,), size, start, descending=True)
    return views_of(page, AuditEventView.of)


def _event_id(after: Key) -> int:
    (event_id,) = after
    if not isinstance(event_id, int) or isinstance(event_id, bool):
        raise InvalidArgument("an audit page starts after an event id")
    return event_id


# -- versions and names of the resources changed ------------------------------------------------


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A version of settings without a version number: the digest of their canonical JSON."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def registry_version(row: Registry) -> str:
    return settings_digest(
        {
            "host": row.host,
            "insecure": row.insecure,
            "caFile": row.ca_file,
            "credentials": row.credentials_ref,
            "repositories": list(row.repositories_filter),
            "indexSchedule": row.index_schedule,
        }
    )


def registry_resource(name: str) -> str:
    return f"registries/{name}"


def policy_resource(name: str) -> str:
    return f"policies/{name}"


def rule_resource(name: str) -> str:
    return f"rules/{name}"


def run_resource(rule: str, run_id: int) -> str:
    return f"rules/{rule}/runs/{run_id}"
