"""Counters of one crawl, reported as it goes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields


@dataclass(slots=True)
class IndexStats:
    repositories_total: int = 0
    repositories_done: int = 0
    tags_seen: int = 0
    manifest_gets: int = 0
    manifests_new: int = 0
    attachments_new: int = 0
    documents: int = 0
    tag_events: int = 0
    tags_gone: int = 0
    locations_gone: int = 0
    errors: int = 0
    phase: str = "starting"

    def as_dict(self) -> dict[str, int | str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ProgressCallback = Callable[[IndexStats], None]
