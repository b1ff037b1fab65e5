"""A tag's history: loaded by catalog.store.views on first use (see there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TagEventView:
    tag: str
    old_digest: str | None
    new_digest: str | None
    observed_at: datetime
