"""Stored policy sets, versioned by content."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.errors import NotFound
from catalog.store.models import Policy


def apply_policy(session: Session, name: str, source: str, digest: str) -> tuple[Policy, bool]:
    """Store a policy set; a new version only when the content changed."""
    current = session.scalar(
        select(Policy).where(Policy.name == name).order_by(Policy.version.desc()).limit(1)
    )
    if current is not None and current.digest == digest:
        return current, False
    row = Policy(
        name=name, version=(current.version + 1) if current else 1, digest=digest, source=source
    )
    session.add(row)
    session.flush()
    return row, True


def current_policy(session: Session, name: str) -> Policy:
    row = session.scalar(
        select(Policy).where(Policy.name == name).order_by(Policy.version.desc()).limit(1)
    )
    if row is None:
        raise NotFound(f"no policy set named {name!r}: apply one with `xregistry policy apply`")
    return row


def current_policy_version(session: Session, name: str) -> int:
    version = session.scalar(select(func.max(Policy.version)).where(Policy.name == name))
    if version is None:
        raise NotFound(f"no policy set named {name!r}: apply one with `xregistry policy apply`")
    return int(version)


def current_policies(
    session: Session, after: str | None = None, limit: int | None = None
) -> list[Policy]:
    """The newest version of each policy set by name: those after ``after``, at most ``limit``."""
    newest = select(Policy.name, func.max(Policy.version).label("version")).group_by(Policy.name)
    if after is not None:
        newest = newest.where(Policy.name > after)
    current = newest.subquery()
    return list(
        session.scalars(
            select(Policy)
            .join(current, (Policy.name == current.c.name) & (Policy.version == current.c.version))
            .order_by(Policy.name)
            .limit(limit)
        )
    )
