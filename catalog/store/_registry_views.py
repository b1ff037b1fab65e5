"""A registry's record, with its last index run: loaded by catalog.store.views on first use
(see there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from catalog.store.views import IndexStatus

if TYPE_CHECKING:
    from sqlalchemy import Row

    from catalog.store.models import Registry


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
