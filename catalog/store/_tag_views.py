"""A tag's record: loaded by catalog.store.views on first use (see there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Row

    from catalog.store.models import Tag


@dataclass(frozen=True, slots=True)
class TagView:
    name: str
    digest: str
    updated_at: datetime
    gone_at: datetime | None

    @classmethod
    def of(cls, row: Tag | Row[Any]) -> TagView:
        return cls(row.name, row.digest, row.updated_at, row.gone_at)
