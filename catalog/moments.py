"""Points in time as users and logs see them: RFC 3339, UTC, with ``Z`` (never ``+00:00``)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(value: datetime, *, to_second: bool = False) -> str:
    """``2026-12-06T05:26:08.674637Z``; ``to_second`` for tables: ``2026-12-06T05:26:08Z``.
    A time without a zone is UTC: the store writes UTC."""
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if to_second:
        moment = moment.replace(microsecond=0)
    return moment.replace(tzinfo=None).isoformat() + "Z"
