"""Manifests, tags, locations and attachments: what the indexer records."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Connection,
    Insert,
    Select,
    String,
    Table,
    any_,
    bindparam,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from catalog.oci.digest import as_digest
from catalog.oci.manifest import Descriptor
from catalog.oci.manifest import Manifest as OciManifest
from catalog.store.models import (
    Attachment,
    IndexChild,
    Manifest,
    ManifestLocation,
    Repository,
    Tag,
    TagEvent,
    table_of,
    utcnow,
)

_CHUNK = 500  # keeps IN (…) lists inside every database's parameter limit
_TAGS = table_of(Tag)
_TAG_EVENTS = table_of(TagEvent)
T = TypeVar("T")


class RepositoryRow(Protocol):
    """All these functions need of a repository: its row's id (a :class:`Repository`, or
    ``registries.RepositoryId`` where no ORM row was loaded)."""

    @property
    def id(self) -> int: ...


def insert_ids(
    connection: Connection, table: Table, rows: list[dict[str, Any]], key: tuple[str, ...]
) -> list[int]:
    """Insert ``rows`` of ``table`` in one statement; their ids in the rows' order, matched by
    the ``key`` columns (unique among them). Ids returned in the rows' order instead would make
    SQLAlchemy insert one row a statement on SQLite, whose RETURNING order is unspecified."""
    found = connection.execute(_returning(table, key), rows)
    ids = {tuple(returned[:-1]): returned[-1] for returned in found}
    return [ids[tuple(row[column] for column in key)] for row in rows]


def insert_new(session: Session, table: Table, key: tuple[str, ...]) -> Insert:
    """The dialect's ``INSERT … ON CONFLICT (key) DO NOTHING``: rows whose ``key`` the table
    holds already are left as they are."""
    # Imported here: only what records an index (a crawl, the gate's live look-up) needs them.
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    columns = [table.c[column] for column in key]
    statement: Insert = dialect.insert(table).on_conflict_do_nothing(index_elements=columns)
    return statement


@functools.cache
def _returning(table: Table, key: tuple[str, ...]) -> Insert:
    return insert(table).returning(*(table.c[column] for column in key), table.c.id)


def chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    """``items`` in slices an ``IN (…)`` list of every supported database takes."""
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def among(session: Session, column: ColumnElement[T], values: Sequence[T]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(%(values)s)``, one array parameter:
    a crawl's read-ahead asks up to a chunk of values a statement, and an ``IN`` list costs the
    client a bind parameter rendered and cast a value, and the statement's text (new for each
    count of values) a parse by psycopg: half the reader thread's CPU on a re-index."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def known_manifests(session: Session, digests: Iterable[str]) -> set[str]:
    wanted = sorted(set(digests))
    found: set[str] = set()
    digest = table_of(Manifest).c.digest
    for chunk in chunks(wanted):
        found.update(session.scalars(select(digest).where(among(session, digest, chunk))))
    return found


def add_manifests(session: Session, manifests: Iterable[OciManifest]) -> int:
    """Record manifests (and indexes' children) the catalog lacks; returns how many were new."""
    by_digest = {str(m.digest): m for m in manifests}
    if not by_digest:
        return 0
    now = utcnow()
    # Core inserts: the indexer records thousands of these, and the ORM's bookkeeping per row
    # costs more than the rows themselves. Those the catalog holds already are left as they
    # are, in the same statement (no statement first to ask which). Parents first: children
    # reference them.
    connection = session.connection()
    table = table_of(Manifest)
    inserted = connection.execute(
        insert_new(session, table, ("digest",)).returning(table.c.digest),
        [
            {
                "digest": digest,
                "media_type": m.media_type,
                "artifact_type": m.effective_artifact_type,
                "size": m.size,
                "subject_digest": str(m.subject.digest) if m.subject else None,
                "config_digest": str(m.config.digest) if m.config else None,
                "raw": m.raw,
                "first_seen": now,
            }
            for digest, m in by_digest.items()
        ],
    )
    new = [by_digest[digest] for digest in inserted.scalars()]
    children = [
        {
            "parent_digest": str(m.digest),
            "child_digest": str(child.digest),
            "position": position,
            "media_type": child.media_type,
            "os": child.platform.os if child.platform else None,
            "architecture": child.platform.architecture if child.platform else None,
            "variant": child.platform.variant if child.platform else None,
            "attests_digest": _attests(child),
        }
        for m in new
        for position, child in enumerate(m.manifests)
    ]
    if children:
        connection.execute(insert(table_of(IndexChild)), children)
    return len(new)


def _attests(child: Descriptor) -> str | None:
    """The image a BuildKit attestation child describes, when its annotation is a digest."""
    named = as_digest(child.attests or "")
    return None if named is None else str(named)


def tags_of(session: Session, repository: RepositoryRow) -> dict[str, Tag]:
    rows = session.scalars(select(Tag).where(Tag.repository_id == repository.id))
    return {row.name: row for row in rows}


class RepositoryState(NamedTuple):
    """A repository's row id (``None`` when it is gone) and live tags (tag → digest)."""

    id: int | None
    tags: dict[str, str]


def repository_states(
    session: Session, registry_id: int, repositories: Sequence[str]
) -> dict[str, RepositoryState]:
    """The states of those of ``repositories`` the registry holds (an unknown one is left
    out), in one statement for all of them: a crawl asks this ahead for every repository."""
    # Table columns, not ORM attributes: every re-index asks this for every repository.
    tags, repos = table_of(Tag), table_of(Repository)
    found: dict[str, RepositoryState] = {}
    for chunk in chunks(sorted(set(repositories))):
        rows = session.execute(
            select(repos.c.name, repos.c.id, repos.c.gone_at, tags.c.name, tags.c.digest)
            .outerjoin(tags, (tags.c.repository_id == repos.c.id) & tags.c.gone_at.is_(None))
            .where(repos.c.registry_id == registry_id, among(session, repos.c.name, chunk))
        )
        for repository, row_id, gone_at, tag, digest in rows:
            state = found.get(repository)
            if state is None:
                state = found[repository] = RepositoryState(None if gone_at else row_id, {})
            if tag is not None:
                state.tags[tag] = digest
    return found


@dataclass(frozen=True, slots=True)
class TagChange:
    tag: str
    old: str | None
    new: str | None


def set_tag(
    session: Session, repository: RepositoryRow, existing: Tag | None, name: str, digest: str
) -> TagChange | None:
    """Point a tag at ``digest``; an event is written when that is news."""
    changes = set_tags(session, repository, {name: existing} if existing else {}, {name: digest})
    return changes[0] if changes else None


def set_tags(
    session: Session, repository: RepositoryRow, existing: dict[str, Tag], wanted: dict[str, str]
) -> list[TagChange]:
    """Point each tag of ``wanted`` (name → digest) at its digest, ``existing`` holding the
    repository's rows by name; an event is written for each change. New tags and the events go
    in as Core inserts, each kind in one statement: a full index records thousands, and the
    ORM's bookkeeping per row cost more than the rows."""
    now = utcnow()
    changed: list[tuple[Tag | None, TagChange]] = []  # no row: a new tag
    for name, digest in wanted.items():
        row = existing.get(name)
        if row is None:
            changed.append((None, TagChange(name, None, digest)))
        elif row.digest != digest or row.gone_at is not None:
            old = None if row.gone_at is not None else row.digest
            row.digest, row.updated_at, row.gone_at = digest, now, None
            changed.append((row, TagChange(name, old, digest)))
    if not changed:
        return []
    connection = session.connection()
    added = [change for row, change in changed if row is None]
    new_ids: dict[str, int] = {}
    if added:
        rows = [
            {"repository_id": repository.id, "name": c.tag, "digest": c.new, "updated_at": now}
            for c in added
        ]
        ids = insert_ids(connection, _TAGS, rows, ("name",))  # unique in a repository
        new_ids.update(zip((c.tag for c in added), ids, strict=True))
    connection.execute(
        insert(_TAG_EVENTS),
        [
            {
                "tag_id": new_ids[c.tag] if row is None else row.id,
                "old_digest": c.old,
                "new_digest": c.new,
                "observed_at": now,
            }
            for row, c in changed
        ],
    )
    return [c for _, c in changed]


def mark_tag_gone(session: Session, tag: Tag) -> TagChange:
    now = utcnow()
    session.add(TagEvent(tag_id=tag.id, old_digest=tag.digest, new_digest=None, observed_at=now))
    tag.gone_at = now
    return TagChange(tag.name, tag.digest, None)


@dataclass(frozen=True, slots=True)
class Link:
    """``attachment`` is attached to ``subject``, found by ``scheme``."""

    subject: str
    attachment: str
    kind: str
    scheme: str
    artifact_type: str | None


def links_to(session: Session, attachment_digests: Collection[str]) -> set[tuple[str, str]]:
    """The recorded links (subject, attachment) to those attachments: read ahead of a crawl's
    recording (links are never removed), so a re-index's need no statement of their own."""
    attachments = table_of(Attachment).c
    found: set[tuple[str, str]] = set()
    for chunk in chunks(sorted(set(attachment_digests))):
        rows = session.execute(
            select(attachments.subject_digest, attachments.attachment_digest).where(
                among(session, attachments.attachment_digest, chunk)
            )
        )
        found.update((subject, attachment) for subject, attachment in rows)
    return found


def add_attachments(
    session: Session, links: Iterable[Link], recorded: Collection[tuple[str, str]] = ()
) -> int:
    """Record the links the catalog does not know yet (``recorded``: links known recorded,
    not sent again); returns how many were new."""
    wanted = {(link.subject, link.attachment): link for link in links}
    new = [link for key, link in wanted.items() if key not in recorded]
    if not new:
        return 0
    now = utcnow()
    table = table_of(Attachment)
    # Links recorded before are left as they are, in the same statement: none asked first.
    inserted = session.connection().execute(
        insert_new(session, table, ("subject_digest", "attachment_digest")).returning(table.c.id),
        [
            {
                "subject_digest": link.subject,
                "attachment_digest": link.attachment,
                "kind": link.kind,
                "scheme": link.scheme,
                "artifact_type": link.artifact_type,
                "first_seen": now,
            }
            for link in new
        ],
    )
    return len(inserted.all())


def reachable(session: Session, roots: set[str]) -> set[str]:
    """Digests reachable from ``roots`` through index children and attachments."""
    return set(roots).union(*reachable_by_root(session, roots).values())


def reachable_by_root(session: Session, roots: Collection[str]) -> dict[str, set[str]]:
    """Each root's reachable digests (itself among them), in one pass for all: a crawl asks
    this for many repositories at once (the unchanged ones of a group)."""
    seen = {root: {root} for root in roots}
    if session.get_bind().dialect.name == "sqlite":
        # One recursive statement (UNION drops what was reached before, so a cycle ends):
        # every re-index of every repository asks this.
        for chunk in chunks(sorted(seen)):
            for root, digest in session.execute(_REACHABLE, {"roots": list(chunk)}):
                seen[root].add(digest)
        return seen
    # PostgreSQL: a statement for two levels. Its recursive form (the edges a UNION ALL of both
    # tables) took ~5 ms more a repository than a statement a level at 2,000 images (a
    # no-change re-index 5.4 -> 6.6 s), planned against a worktable it cannot estimate; two
    # levels a statement end most repositories in one (an image, its signatures and SBOMs).
    frontier = {root: {root} for root in roots}  # by root: digests to expand
    while frontier:
        first: dict[str, set[str]] = {}  # by digest expanded: one step (expanded too), two
        second: dict[str, set[str]] = {}
        for chunk in chunks(sorted(set().union(*frontier.values()))):
            for start, digest, depth in session.execute(_TWO_LEVELS, {"frontier": list(chunk)}):
                (first if depth == 1 else second).setdefault(start, set()).add(digest)
        after: dict[str, set[str]] = {}
        for root, expanded in frontier.items():
            found = seen[root]
            for digest in expanded:
                found |= first.get(digest, set())
            beyond = set().union(*(second.get(digest, set()) for digest in expanded)) - found
            if beyond:
                found |= beyond
                after[root] = beyond
        frontier = after
    return seen


def _two_levels() -> Select[str, str, int]:
    """PostgreSQL's: from each digest of ``frontier`` (start), the digests one step away
    (depth 1) and two (2)."""
    children, attachments = table_of(IndexChild).c, table_of(Attachment).c
    # One array parameter (see ``among``).
    frontier = bindparam("frontier", type_=ARRAY(String))
    first = union_all(
        select(children.parent_digest.label("start"), children.child_digest.label("digest")).where(
            children.parent_digest == any_(frontier)
        ),
        select(attachments.subject_digest, attachments.attachment_digest).where(
            attachments.subject_digest == any_(frontier)
        ),
    ).cte("first")
    both = union_all(
        select(first.c.start, first.c.digest, literal(1).label("depth")),
        select(first.c.start, children.child_digest, literal(2)).join(
            first, children.parent_digest == first.c.digest
        ),
        select(first.c.start, attachments.attachment_digest, literal(2)).join(
            first, attachments.subject_digest == first.c.digest
        ),
    ).subquery("both")
    return select(both.c.start, both.c.digest, both.c.depth)  # a Select: a read (gate._state_cache)


_TWO_LEVELS = _two_levels()


def _reachable() -> Select[str, str]:
    """SQLite's recursive statement, (root, digest) pairs: a recursive SELECT a table (through
    a compound subquery of both it would read the whole of both tables at each step)."""
    children, attachments = table_of(IndexChild).c, table_of(Attachment).c
    roots: BindParameter[list[str]] = bindparam("roots", expanding=True)
    edges = union_all(
        select(children.parent_digest.label("parent"), children.child_digest.label("child")),
        select(attachments.subject_digest, attachments.attachment_digest),
    ).subquery("edges")
    found = (
        select(edges.c.parent.label("root"), edges.c.child)
        .where(edges.c.parent.in_(roots))
        .cte("found", recursive=True)
    )
    found = found.union(
        select(found.c.root, children.child_digest).join(
            found, children.parent_digest == found.c.child
        ),
        select(found.c.root, attachments.attachment_digest).join(
            found, attachments.subject_digest == found.c.child
        ),
    )
    return select(found.c.root, found.c.child)


_REACHABLE = _reachable()


class Location(NamedTuple):
    """A manifest location's row: its id, and when it was found gone (``None``: live)."""

    id: int
    gone_at: datetime | None


def locations_of(
    session: Session, repository_ids: Collection[int]
) -> dict[int, dict[str, Location]]:
    """The manifest locations (digest → row) of those repositories that have any, in one
    statement for many: a crawl reads them ahead of its recording."""
    # Plain rows: every re-index of every repository asks this.
    locations = table_of(ManifestLocation).c
    found: dict[int, dict[str, Location]] = {}
    for chunk in chunks(sorted(set(repository_ids))):
        rows = session.execute(
            select(
                locations.repository_id, locations.digest, locations.id, locations.gone_at
            ).where(among(session, locations.repository_id, chunk))
        )
        for repository_id, digest, row_id, gone_at in rows:
            found.setdefault(repository_id, {})[digest] = Location(row_id, gone_at)
    return found


class LocationsWanted(NamedTuple):
    """A repository's locations as they should be (:func:`sync_locations`' arguments)."""

    repository: RepositoryRow
    present: set[str]
    recorded: Collection[str] = ()
    located: Mapping[str, Location] | None = None


def sync_locations(
    session: Session,
    repository: RepositoryRow,
    present: set[str],
    recorded: Collection[str] = (),
    located: Mapping[str, Location] | None = None,
) -> tuple[int, int]:
    """Make the repository's locations match ``present``: (added, gone) counts (added: at most,
    one another crawl recorded since ``located`` was read is not added again).

    Only digests the catalog holds a manifest for get a location (``recorded``: digests known
    to have one, not asked again). ``located``: the repository's locations, read ahead (a
    crawl of it in another process may add one since); read here when not given.
    """
    wanted = LocationsWanted(repository, present, recorded, located)
    return sync_locations_of(session, [wanted])[0]


def sync_locations_of(session: Session, wanted: Sequence[LocationsWanted]) -> list[tuple[int, int]]:
    """:func:`sync_locations` for several repositories (each once), a statement of a kind for
    all of them: the (added, gone) counts of each, in order."""
    now = utcnow()
    # Plain rows and table updates: every re-index of every repository passes here, and ORM
    # objects (and the ORM's syncing of them after an update) cost more than the rows.
    locations = table_of(ManifestLocation)
    unread = [w.repository.id for w in wanted if w.located is None]
    read = locations_of(session, unread) if unread else {}
    plans = []
    for w in wanted:
        located = read.get(w.repository.id, {}) if w.located is None else w.located
        unlocated = w.present - located.keys()
        plans.append((located, unlocated, {d for d in unlocated if d in w.recorded}))
    known = known_manifests(session, {d for _, unlocated, held in plans for d in unlocated - held})
    added: list[dict[str, Any]] = []
    gone: list[int] = []
    back: list[int] = []
    counts = []
    for w, (located, unlocated, held) in zip(wanted, plans, strict=True):
        missing = held | (unlocated & known)
        added += (
            {"repository_id": w.repository.id, "digest": d, "first_seen": now, "last_seen": now}
            for d in sorted(missing)
        )
        lost = [i for d, (i, gone_at) in located.items() if d not in w.present and gone_at is None]
        gone += lost
        back += (i for d, (i, _) in located.items() if d in w.present)
        counts.append((len(missing), len(lost)))
    if added:
        # Read ahead, outside this transaction: another process's crawl of the repository may
        # have recorded one since, which is no conflict to fail the repository with.
        session.connection().execute(
            insert_new(session, locations, ("repository_id", "digest")), added
        )
    for chunk in chunks(gone):
        session.execute(
            update(locations).where(among(session, locations.c.id, chunk)).values(gone_at=now)
        )
    for chunk in chunks(back):
        session.execute(
            update(locations)
            .where(among(session, locations.c.id, chunk))
            .values(last_seen=now, gone_at=None)
        )
    return counts


def mark_indexed(session: Session, repository_ids: Collection[int]) -> None:
    """Stamp the repositories as indexed now, and live (another writer may have marked one gone
    since its row was read ahead): a plain UPDATE, where setting the attributes would cost an
    ORM flush for every repository of every re-index."""
    repositories = table_of(Repository)
    now = utcnow()
    for chunk in chunks(sorted(set(repository_ids))):
        session.execute(
            update(repositories)
            .where(among(session, repositories.c.id, chunk))
            .values(last_indexed_at=now, gone_at=None)
        )
