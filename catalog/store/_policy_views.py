"""A stored policy set's record: loaded by catalog.store.views on first use (see there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Row

    from catalog.store.models import Policy


@dataclass(frozen=True, slots=True)
class PolicyView:
    name: str
    version: int
    digest: str
    source: str
    created_at: datetime

    @classmethod
    def of(cls, row: Policy | Row[Any]) -> PolicyView:
        return cls(row.name, row.version, row.digest, row.source, row.created_at)
