"""Times in reasons: UTC, to the second, ISO 8601 (``2023-01-20T20:51:33Z``)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
