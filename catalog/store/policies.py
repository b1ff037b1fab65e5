"""Stored policy sets, versioned by content (Core on the schema's table: listing them needs no
ORM)."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update

from catalog.errors import NotFound
from catalog.store.queries import AnyRow, Reads
from catalog.store.schema import policies
from catalog.store.views import PolicyView

_NEWEST_FIRST = policies.c.version.desc()


def apply_policy(
    session: Reads, name: str, source: str, digest: str, canonical: str
) -> tuple[AnyRow, bool]:
    """Store a policy set (its source, the digest and canonical JSON it validated to); a new
    version only when the content changed."""
    current = _newest(session, name)
    if current is not None and current.digest == digest:
        if current.canonical is None:  # applied before the catalog kept it (migration 0008)
            session.execute(
                update(policies).where(policies.c.id == current.id).values(canonical=canonical)
            )
        return current, False
    version = (current.version + 1) if current is not None else 1
    row = session.execute(
        insert(policies)
        .values(name=name, version=version, digest=digest, source=source, canonical=canonical)
        .returning(policies)
    ).one()
    return row, True


def current_policy(session: Reads, name: str) -> AnyRow:
    row = _newest(session, name)
    if row is None:
        raise NotFound(f"no policy set named {name!r}: apply one with `xregistry policy apply`")
    return row


def _newest(session: Reads, name: str) -> AnyRow | None:
    query = select(policies).where(policies.c.name == name).order_by(_NEWEST_FIRST).limit(1)
    return session.execute(query).first()


def current_policy_version(session: Reads, name: str) -> int:
    version = session.scalar(select(func.max(policies.c.version)).where(policies.c.name == name))
    if version is None:
        raise NotFound(f"no policy set named {name!r}: apply one with `xregistry policy apply`")
    return int(version)


def current_policies(
    session: Reads, after: str | None = None, limit: int | None = None
) -> list[PolicyView]:
    """The newest version of each policy set by name: those after ``after``, at most ``limit``."""
    newest = select(policies.c.name, func.max(policies.c.version).label("version")).group_by(
        policies.c.name
    )
    if after is not None:
        newest = newest.where(policies.c.name > after)
    current = newest.subquery()
    rows = session.execute(
        select(policies)
        .join(
            current,
            (policies.c.name == current.c.name) & (policies.c.version == current.c.version),
        )
        .order_by(policies.c.name)
        .limit(limit)
    )
    return [PolicyView.of(row) for row in rows]
