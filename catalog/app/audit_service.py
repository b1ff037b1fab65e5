"""Reading the audit: who changed what, for the CLI and the gRPC servicer alike."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import InvalidArgument
from catalog.store.audit import PRINCIPAL_MAX, AuditEventView, AuditFilter, list_events
from catalog.store.queries import Key, Page, page_size


class AuditService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def list_events(
        self, where: AuditFilter, size: int, after: Key | None = None
    ) -> Page[AuditEventView]:
        """Events matching ``where``, newest first, ``size`` at most; ``after`` is the
        ``next_after`` of the page before."""
        if where.principal is not None and len(where.principal) > PRINCIPAL_MAX:  # none so long
            raise InvalidArgument(f"principal is longer than {PRINCIPAL_MAX} characters")
        if where.since is not None and where.until is not None and where.until < where.since:
            raise InvalidArgument("the end of the time range is before its start")
        with self.sessions() as session:
            return list_events(session, where, page_size(size), after)
