"""The one column type for points in time: aware UTC datetimes in, aware UTC datetimes out.

PostgreSQL keeps ``timestamp with time zone`` and hands values back in the session's zone;
SQLite keeps text without a zone and hands them back naive. Both are UTC here, converted at the
column, so no caller fixes timestamps up by hand. The DDL is unchanged
(``DateTime(timezone=True)``): stored rows need no rewriting. A naive datetime written is a bug
(whose clock is it?), so it is refused rather than guessed at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


class NaiveDatetime(ValueError):
    """A datetime without a time zone was given for a timestamp column."""


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise NaiveDatetime(f"naive datetime {value.isoformat()}: give an aware (UTC) one")
        # SQLite stores the wall-clock digits and drops the offset: store UTC's.
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: written as UTC above
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]
