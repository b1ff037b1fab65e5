"""Packages found in SBOMs, and where the artifacts holding them live: loaded by
catalog.store.views on first use (see there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LocationView:
    registry: str
    repository: str
    tags: list[str]
    first_seen: datetime
    last_seen: datetime
    gone: bool


@dataclass(frozen=True, slots=True)
class PackageView:
    purl: str | None
    type: str | None
    namespace: str | None
    name: str
    version: str | None
    licenses: list[str]


@dataclass(frozen=True, slots=True)
class PackageMatch:
    package: PackageView
    artifact_digest: str
    locations: list[LocationView]
