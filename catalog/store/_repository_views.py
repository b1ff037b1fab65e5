"""Repositories' records, and what index runs could not read: loaded by catalog.store.views on
first use (see there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Row

    from catalog.store.models import IndexErrorRecord, Repository


@dataclass(frozen=True, slots=True)
class RepositoryView:
    name: str
    first_seen: datetime
    last_indexed_at: datetime | None
    gone_at: datetime | None

    @classmethod
    def of(cls, row: Repository | Row[Any]) -> RepositoryView:
        return cls(row.name, row.first_seen, row.last_indexed_at, row.gone_at)


@dataclass(frozen=True, slots=True)
class IndexErrorView:
    repository: str | None
    reference: str | None
    reason: str
    observed_at: datetime

    @classmethod
    def of(cls, row: IndexErrorRecord | Row[Any]) -> IndexErrorView:
        return cls(row.repository, row.reference, row.reason, row.observed_at)
