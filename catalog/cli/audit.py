"""``xregistry audit``: who changed what, from the database or a server's AuditService."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import click

from catalog.cli.errors import reports_errors
from catalog.cli.output import echo_json, output_option, table, when_text
from catalog.cli.pages import TokensByKey, items
from catalog.schedules import parse_duration
from catalog.store.audit import AuditEventView, AuditFilter, AuditKind
from catalog.store.queries import Key, Page

if TYPE_CHECKING:
    from catalog.api.v1 import audit_pb2 as pb

_PAGE = 500  # events fetched per call while printing up to --limit


class AuditLog(Protocol):
    def list_events(
        self, where: AuditFilter, size: int, after: Key | None = None
    ) -> Page[AuditEventView]: ...


class RemoteAudit:
    """The audit of a running ``xregistry serve`` (its AuditService)."""

    def __init__(self, server: str) -> None:
        from catalog.api.v1 import audit_pb2_grpc
        from catalog.cli.remote import Connection

        self.connection = Connection(server)
        self.stub = audit_pb2_grpc.AuditServiceStub(self.connection.channel)
        self._pages = TokensByKey()

    def list_events(
        self, where: AuditFilter, size: int, after: Key | None = None
    ) -> Page[AuditEventView]:
        from catalog.api import convert, enums
        from catalog.api.v1 import audit_pb2 as pb

        request = pb.ListAuditEventsRequest(
            page_size=size,
            principal=where.principal or "",
            kind=enums.AUDIT_KIND.proto(where.kind),
            start_time=convert.timestamp(where.since),
            end_time=convert.timestamp(where.until),
        )
        request.page_token = self._pages.token(where, after)
        answer = self.connection.call(self.stub.ListAuditEvents, request)
        # The key comes from the last event listed, even one of a kind this client skips.
        raw = self._pages.page(where, answer.audit_events, _event_key, answer.next_page_token)
        return Page([view for view in map(_view, raw.items) if view is not None], raw.next_after)


def _event_id(event: pb.AuditEvent) -> int:
    return int(event.name.rpartition("/")[2])


def _event_key(event: pb.AuditEvent) -> Key:
    return (_event_id(event),)


def _view(event: pb.AuditEvent) -> AuditEventView | None:
    """The event as the store's record; None for a kind newer than this client."""
    from catalog.api import convert, enums

    kind = enums.AUDIT_KIND.domain(event.kind)
    if kind is None:
        return None
    return AuditEventView(
        id=_event_id(event),
        occurred_at=convert.datetime_of(event.event_time),
        principal=event.principal,
        kind=kind,
        resource=event.resource,
        before=event.before_version or None,
        after=event.after_version or None,
        detail=event.detail or None,
    )


def open_audit(ctx: click.Context) -> AuditLog:
    from catalog.cli.context import database_url, open_sessions, server_address

    server = server_address(ctx)
    if server:
        return RemoteAudit(server)
    from catalog.app.audit_service import AuditService

    return AuditService(open_sessions(database_url(ctx)))


def point_in_time(text: str, now: datetime) -> datetime:
    """RFC 3339 (``2026-12-06T07:00:00Z``; a time without a zone is UTC), or how long ago
    (``90s``, ``15m``, ``2h``, ``1d``)."""
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give an RFC 3339 time (2026-12-06T07:00:00Z) or a duration ago (2h)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def events(log: AuditLog, where: AuditFilter, limit: int) -> Iterator[AuditEventView]:
    """Up to ``limit`` events, newest first, page after page."""
    return items(lambda size, after: log.list_events(where, size, after), limit, _PAGE, "events")


def event_json(view: AuditEventView) -> dict[str, object]:
    return {
        "id": view.id,
        "time": view.occurred_at,
        "principal": view.principal,
        "kind": str(view.kind),
        "resource": view.resource,
        "before": view.before,
        "after": view.after,
        "detail": view.detail,
    }


@click.command("audit")
@click.option("--principal", help="Only changes by this principal, e.g. token:ci or local:alice.")
@click.option(
    "--kind", type=click.Choice([str(k) for k in AuditKind]), help="Only changes of this kind."
)
@click.option("--since", help="From this time on: RFC 3339, or a duration ago (2h, 1d).")
@click.option("--until", help="Before this time: RFC 3339, or a duration ago.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="At most this many events, the newest.",
)
@output_option
@reports_errors
def audit_command(
    principal: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    output: str,
) -> None:
    """Who changed what: policies applied, registries and rules created, changed and deleted,
    runs started; newest first.

    \b
    Examples:
      xregistry audit --since 1d
      xregistry audit --principal token:ci --kind policy.applied -o json
    """
    now = datetime.now(UTC)
    where = AuditFilter(
        principal=principal,
        kind=AuditKind(kind) if kind else None,
        since=point_in_time(since, now) if since else None,
        until=point_in_time(until, now) if until else None,
    )
    found = list(events(open_audit(click.get_current_context()), where, limit))
    if output == "json":
        echo_json([event_json(v) for v in found])
        return
    table(
        None,
        ["time", "principal", "kind", "resource", "before", "after", "detail"],
        [
            (
                when_text(v.occurred_at),
                v.principal,
                v.kind,
                v.resource,
                v.before,
                v.after,
                v.detail,
            )
            for v in found
        ],
    )
