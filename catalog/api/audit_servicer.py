"""``xregistry.v1.AuditService``: validate the filters, read the audit, translate."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from catalog.api import convert, enums, names
from catalog.api.paging import PageTokens
from catalog.api.server import ServiceBinding
from catalog.api.v1 import audit_pb2 as pb
from catalog.api.v1 import audit_pb2_grpc
from catalog.app.audit_service import AuditService
from catalog.errors import InvalidArgument
from catalog.store.audit import AuditEventView, AuditFilter

Context = grpc.aio.ServicerContext[Any, Any]


def audit_service(servicer: audit_pb2_grpc.AuditServiceServicer) -> ServiceBinding[Any]:
    return ServiceBinding(
        pb.DESCRIPTOR.services_by_name["AuditService"],
        servicer,
        audit_pb2_grpc.add_AuditServiceServicer_to_server,
    )


def event_message(view: AuditEventView) -> pb.AuditEvent:
    return pb.AuditEvent(
        name=names.audit_event_name(view.id),
        principal=view.principal,
        kind=enums.AUDIT_KIND.proto(view.kind),
        resource=view.resource,
        before_version=view.before or "",
        after_version=view.after or "",
        event_time=convert.timestamp(view.occurred_at),
        detail=view.detail or "",
    )


def audit_filter(request: pb.ListAuditEventsRequest) -> AuditFilter:
    kind = enums.AUDIT_KIND.domain(request.kind)
    if kind is None and request.kind != pb.AUDIT_EVENT_KIND_UNSPECIFIED:
        raise InvalidArgument(f"unknown audit event kind {request.kind}")
    since = convert.optional_datetime(request, "start_time")
    until = convert.optional_datetime(request, "end_time")
    return AuditFilter(principal=request.principal or None, kind=kind, since=since, until=until)


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, audit: AuditService, tokens: PageTokens) -> None:
        self.audit = audit
        self.tokens = tokens

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        where = audit_filter(request)
        size, after = request.page_size, self.tokens.after(request, int)
        page = await asyncio.to_thread(self.audit.list_events, where, size, after)
        return pb.ListAuditEventsResponse(
            audit_events=[event_message(v) for v in page.items],
            next_page_token=self.tokens.next(request, page.next_after),
        )
