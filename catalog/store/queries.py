"""Read-side queries of the catalog: plain records for the API and the CLI to present.

Every list is ordered as the API documents it (by name, path, tag or digest; events and errors
newest first) and paginated by keyset: a page ends with the sort key of its last row and the row's
id as tie-breaker (``Page.next_after``), and the next page starts after it, so pages stay stable
while the indexer writes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select

from catalog.errors import InvalidArgument, NotFound
from catalog.lazy import lazy_exports
from catalog.oci.digest import Digest
from catalog.oci.errors import InvalidDigest
from catalog.oci.reference import ImageReference
from catalog.store import views
from catalog.store.package_keys import key_range, package_key
from catalog.store.schema import (
    attachments,
    attestations,
    index_children,
    index_errors,
    manifest_locations,
    manifests,
    provenance,
    registries,
    repositories,
    sbom_packages,
    sboms,
    signatures,
    tag_events,
    tags,
)
from catalog.store.views import Key as Key
from catalog.store.views import Page as Page

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

    from catalog.store.models import Provenance
    from catalog.store.views import ArtifactView as ArtifactView
    from catalog.store.views import AttachmentView as AttachmentView
    from catalog.store.views import AttestationView as AttestationView
    from catalog.store.views import IndexErrorView as IndexErrorView
    from catalog.store.views import LocationView as LocationView
    from catalog.store.views import PackageMatch as PackageMatch
    from catalog.store.views import PackageView as PackageView
    from catalog.store.views import PlatformView as PlatformView
    from catalog.store.views import ProvenanceView as ProvenanceView
    from catalog.store.views import RegistryView as RegistryView
    from catalog.store.views import RepositoryView as RepositoryView
    from catalog.store.views import SbomView as SbomView
    from catalog.store.views import SignatureView as SignatureView
    from catalog.store.views import TagEventView as TagEventView
    from catalog.store.views import TagView as TagView

# Re-exported: the records live apart from SQL (catalog/store/views.py) for light importers, and
# each family is created when first used (see there).
__getattr__ = lazy_exports("catalog.store", dict.fromkeys(views.__all__, "views"), module=__name__)

# Every query here is Core on catalog.store.schema's tables, and runs on an ORM session (the
# API, the writers) or a plain connection (a command that only reads: no ORM imported).
Reads: TypeAlias = "Session | Connection"
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_CHUNK = 64  # rows read at a time by lists whose items registries size (byte-bounded pages)


T = TypeVar("T")
V = TypeVar("V")


class Budget(NamedTuple):  # a NamedTuple: a frozen dataclass costs ~4.5M instructions at import
    """The bytes a page may take, by the caller's measure of one item (its encoded size): a
    page ends before the item that would pass ``limit``; an item over it alone is a page."""

    limit: int
    weigh: Callable[[Any], int]


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """The page size to use: ``default`` for 0, at most ``maximum``; negative is an error. The
    one rule of every list, the API's and the CLI's alike."""
    if requested < 0:
        raise InvalidArgument(f"page_size must not be negative (got {requested})")
    if requested == 0:
        return default
    return min(requested, maximum)


def bounded_page(items: Iterable[tuple[T, Key]], size: int, budget: Budget | None) -> Page[T]:
    """At most ``size`` of ``items`` (each with its page key), and under ``budget``: the page
    ends early when the next item would pass it (AIP-158 lets a page hold fewer items than
    asked); the first item is always taken, so that paging moves on."""
    page: list[T] = []
    used, last = 0, None
    for item, key in items:
        if len(page) == size:
            return Page(page, last)
        if budget is not None:
            weight = budget.weigh(item)
            if page and used + weight > budget.limit:
                return Page(page, last)
            used += weight
        page.append(item)
        last = key
    return Page(page, None)


def _chunks(
    session: Reads,
    query: Any,
    columns: tuple[Any, ...],
    after: Key | None,
    key_of: Callable[[Any], Key],
    size: int,
) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` in keyset order, a few at a time: a byte-bounded page of ``size``
    items reads only as many rows as it may take, whatever they hold."""
    chunk = min(size + 1, _CHUNK)
    while True:
        rows = session.execute(_keyset(query, columns, after, False).limit(chunk)).all()
        if rows:
            yield rows
        if len(rows) < chunk:
            return
        after = key_of(rows[-1])


def _digest(text: str) -> str:
    try:
        return str(Digest.parse(text))
    except InvalidDigest as exc:
        raise InvalidArgument(str(exc)) from None


def locations_of(session: Reads, digests: Collection[str]) -> dict[str, list[LocationView]]:
    """Where each digest lives, with its live tags there: two queries for any number of them."""
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    location, repo = manifest_locations.c, repositories.c
    rows = session.execute(
        select(
            location.digest,
            location.repository_id,
            location.first_seen,
            location.last_seen,
            location.gone_at,
            repo.name,
            registries.c.name.label("registry"),
        )
        .join(repositories, location.repository_id == repo.id)
        .join(registries, repo.registry_id == registries.c.id)
        .where(location.digest.in_(wanted))
        .order_by(registries.c.name, repo.name)
    ).all()
    live: dict[tuple[int, str], list[str]] = {}
    for repository_id, digest, name in session.execute(
        select(tags.c.repository_id, tags.c.digest, tags.c.name)
        .where(tags.c.digest.in_(wanted), tags.c.gone_at.is_(None))
        .order_by(tags.c.name)
    ):
        live.setdefault((repository_id, digest), []).append(name)
    found: dict[str, list[LocationView]] = {d: [] for d in wanted}
    for row in rows:
        found[row.digest].append(
            views.LocationView(
                registry=row.registry,
                repository=row.name,
                tags=live.get((row.repository_id, row.digest), []),
                first_seen=row.first_seen,
                last_seen=row.last_seen,
                gone=row.gone_at is not None,
            )
        )
    return found


def _attachment_views(rows: Sequence[AnyRow]) -> list[AttachmentView]:
    return [
        views.AttachmentView(
            a.attachment_digest, a.subject_digest, a.kind, a.scheme, a.artifact_type
        )
        for a in rows
    ]


def get_artifact(session: Reads, digest: str) -> ArtifactView:
    digest = _digest(digest)
    m = manifests.c
    manifest = session.execute(
        select(m.media_type, m.artifact_type, m.size).where(m.digest == digest)
    ).first()
    if manifest is None:
        raise NotFound(f"the catalog has no artifact {digest}")
    child = index_children.c
    as_child = session.execute(select(index_children).where(child.child_digest == digest).limit(1))
    children = session.execute(
        select(index_children).where(child.parent_digest == digest).order_by(child.position)
    ).all()
    attached_rows = session.execute(
        select(attachments).where(attachments.c.subject_digest == digest).order_by(attachments.c.id)
    ).all()
    attached = [a.attachment_digest for a in attached_rows]
    # The documents themselves (up to 64 MiB each) are not part of the view: never loaded.
    sig = signatures.c
    signature_rows = session.execute(
        select(
            sig.attachment_digest,
            sig.format,
            sig.identity,
            sig.issuer,
            sig.extensions,
            sig.key_id,
            sig.log_index,
            sig.integrated_time,
            sig.signed_digests,
        )
        .where(sig.attachment_digest.in_(attached))
        .order_by(sig.id)
    ).all()
    attestation_rows = session.execute(
        select(
            attestations.c.attachment_digest,
            attestations.c.predicate_type,
            provenance.c.id.label("provenance_id"),
            *_PROVENANCE,
        )
        .outerjoin(provenance, provenance.c.attestation_id == attestations.c.id)
        .where(attestations.c.attachment_digest.in_(attached))
        .order_by(attestations.c.id)
    ).all()
    sbom_rows = session.execute(
        select(sboms).where(sboms.c.attachment_digest.in_(attached)).order_by(sboms.c.id)
    ).all()
    first_parent = as_child.first()
    return views.ArtifactView(
        digest=digest,
        media_type=manifest.media_type,
        artifact_type=manifest.artifact_type,
        size=manifest.size,
        platform=_platform(first_parent) if first_parent else None,
        children=[_platform(c) for c in children if c.attests_digest is None],
        locations=locations_of(session, [digest])[digest],
        attachments=_attachment_views(attached_rows),
        signatures=[
            views.SignatureView(
                s.attachment_digest,
                s.format,
                s.identity,
                s.issuer,
                dict(s.extensions),
                s.key_id,
                s.log_index,
                s.integrated_time,
                list(s.signed_digests),
            )
            for s in signature_rows
        ],
        attestations=[
            views.AttestationView(
                a.attachment_digest,
                a.predicate_type,
                None if a.provenance_id is None else provenance_view(a),
            )
            for a in attestation_rows
        ],
        sboms=[
            views.SbomView(s.attachment_digest, s.format, s.spec_version, s.tool, s.package_count)
            for s in sbom_rows
        ],
    )


# The columns of a provenance record, in ProvenanceView's order.
_PROVENANCE = (
    provenance.c.builder_id,
    provenance.c.build_type,
    provenance.c.source_uri,
    provenance.c.source_digest,
    provenance.c.source_ref,
    provenance.c.entry_point,
)


def _platform(child: AnyRow) -> PlatformView:
    return views.PlatformView(child.child_digest, child.os, child.architecture, child.variant)


def provenance_view(row: Provenance | AnyRow | None) -> ProvenanceView | None:
    if row is None:
        return None
    return views.ProvenanceView(
        row.builder_id,
        row.build_type,
        row.source_uri,
        row.source_digest,
        row.source_ref,
        row.entry_point,
    )


# A tag's current digest; parameters host, repository, tag. Built once: the gate's warm path
# runs it (as a subquery) on every request.
TAG_DIGEST = (
    select(tags.c.digest)
    .join(repositories, tags.c.repository_id == repositories.c.id)
    .join(registries, repositories.c.registry_id == registries.c.id)
    .where(
        registries.c.host == bindparam("host"),
        repositories.c.name == bindparam("repository"),
        tags.c.name == bindparam("tag"),
        tags.c.gone_at.is_(None),
    )
)


def tag_params(reference: ImageReference) -> dict[str, str]:
    """The parameters of :data:`TAG_DIGEST` for a tag reference (``latest`` when untagged)."""
    return {
        "host": reference.registry,
        "repository": reference.repository,
        "tag": reference.tag or "latest",
    }


def resolve_reference(session: Reads, reference: ImageReference) -> str:
    """The digest a reference names, by the catalog's tags (a digest is taken as it is)."""
    if reference.digest is not None:
        return str(reference.digest)
    digest: str | None = session.scalar(TAG_DIGEST, tag_params(reference))
    if digest is None:
        raise NotFound(f"the catalog has no tag {reference}")
    return digest


def list_referrers(
    session: Reads,
    digest: str,
    artifact_type: str | None,
    size: int,
    after: Key | None,
    budget: Budget | None = None,
) -> Page[AttachmentView]:
    """By attachment digest."""
    query = select(attachments).where(attachments.c.subject_digest == _digest(digest))
    if artifact_type:
        query = query.where(attachments.c.artifact_type == artifact_type)
    order = (attachments.c.attachment_digest, attachments.c.id)

    def key(row: Any) -> Key:
        return (row.attachment_digest, row.id)

    found = (
        (view, key(row))
        for rows in _chunks(session, query, order, after, key, size)
        for row, view in zip(rows, _attachment_views(rows), strict=True)
    )
    return bounded_page(found, size, budget)


def _beyond(columns: tuple[Any, ...], key: Key, descending: bool) -> ColumnElement[bool]:
    """Rows after ``key`` in the order of ``columns`` (a row-value comparison, spelled out
    because SQLAlchemy's ``tuple_`` comparison is not portable across backends)."""
    (column, *rest), (value, *others) = columns, key
    first: ColumnElement[bool] = column < value if descending else column > value
    if not rest:
        return first
    return or_(first, and_(column == value, _beyond(tuple(rest), tuple(others), descending)))


def _keyset(query: Any, columns: tuple[Any, ...], after: Key | None, descending: bool) -> Any:
    """``query`` ordered by ``columns`` (the last one unique: the tie-breaker), after ``after``."""
    if after is not None:
        if len(after) != len(columns):
            raise InvalidArgument("page_token is not a valid page token")
        query = query.where(_beyond(columns, after, descending))
    return query.order_by(*(c.desc() if descending else c for c in columns))


def keyset_page(
    session: Reads,
    query: Any,
    columns: tuple[Any, ...],
    size: int,
    after: Key | None,
    *,
    descending: bool = False,
) -> Page[Any]:
    """One page of the rows ``query`` selects (a table's), ordered by ``columns`` (columns of
    the rows: their values are the next page's key)."""
    rows: list[Any] = list(
        session.execute(_keyset(query, columns, after, descending).limit(size + 1))
    )
    more = len(rows) > size
    rows = rows[:size]
    last = rows[-1] if more and rows else None
    return Page(rows, None if last is None else tuple(getattr(last, c.key) for c in columns))


def _package_text(text: str) -> None:
    """Refuse what no package row holds (the decoders refuse it) and a driver would fail on: a
    NUL (PostgreSQL's text) or an unpaired surrogate (a command line's undecodable byte)."""
    if "\x00" in text:
        raise InvalidArgument("a package URL, name or version cannot contain NUL")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            "a package URL, name or version must be valid Unicode (no unpaired surrogate)"
        ) from None


def _keyed(column: Any, head: str, version: str | None) -> ColumnElement[bool]:
    """Rows whose key is the head's with this version, or with any version."""
    if version:
        return column == package_key(head, version)  # type: ignore[no-any-return]
    low, high = key_range(head)
    return column.between(low, high)  # type: ignore[no-any-return]


def search_packages(
    session: Reads,
    *,
    purl: str | None = None,
    name: str | None = None,
    version: str | None = None,
    size: int = DEFAULT_PAGE_SIZE,
    after: Key | None = None,
    budget: Budget | None = None,
) -> Page[PackageMatch]:
    """Artifacts whose SBOMs list a package: by purl (with or without version) or name+version,
    ordered by artifact digest, then package (a page's key: both)."""
    p = sbom_packages.c
    query = (
        select(
            p.id,
            p.purl,
            p.type,
            p.namespace,
            p.name,
            p.version,
            p.licenses,
            attachments.c.subject_digest,
        )
        .join(sboms, p.sbom_id == sboms.c.id)
        .join(attachments, attachments.c.attachment_digest == sboms.c.attachment_digest)
    )
    for text in (purl, name, version):
        if text:
            _package_text(text)
    if purl:
        # Imported here: packageurl's modules, for the one query that parses a purl.
        from catalog.store.purls import parse_purl, purl_base

        parsed = parse_purl(purl)
        if parsed.version:
            _package_text(parsed.version)  # percent-decoded (the base stays encoded)
        keys, column, head, version = p.purl_key, p.purl_base, purl_base(parsed), parsed.version
    elif name:
        keys, column, head = p.name_key, p.name, name
    else:
        raise InvalidArgument("give a package URL, or a package name (and optionally a version)")
    # Rows found by their key (``package_keys``: one key with a version, a range without),
    # then the strings compared: different strings may share a key.
    query = query.where(_keyed(keys, head, version), column == head)
    if version:
        query = query.where(p.version == version)
    order = (attachments.c.subject_digest, p.id)

    def key(row: Any) -> Key:
        return (row.subject_digest, row.id)

    def matches(rows: Sequence[Any]) -> Iterator[tuple[PackageMatch, Key]]:
        where = locations_of(session, [row.subject_digest for row in rows])
        for row in rows:
            package = views.PackageView(
                row.purl, row.type, row.namespace, row.name, row.version, list(row.licenses)
            )
            yield (
                views.PackageMatch(package, row.subject_digest, where[row.subject_digest]),
                key(row),
            )

    found = (
        match
        for rows in _chunks(session, query, order, after, key, size)
        for match in matches(rows)
    )
    return bounded_page(found, size, budget)


def _repository(session: Reads, registry: str, repository: str) -> int:
    """The repository's id."""
    found: int | None = session.scalar(
        select(repositories.c.id)
        .join(registries, repositories.c.registry_id == registries.c.id)
        .where(registries.c.name == registry, repositories.c.name == repository)
    )
    if found is None:
        raise NotFound(f"no repository {repository!r} in registry {registry!r}")
    return found


def tag_history(
    session: Reads, registry: str, repository: str, tag: str, size: int, after: Key | None
) -> Page[TagEventView]:
    """Newest first."""
    repo = _repository(session, registry, repository)
    tag_id = session.scalar(
        select(tags.c.id).where(tags.c.repository_id == repo, tags.c.name == tag)
    )
    if tag_id is None:
        raise NotFound(f"no tag {tag!r} in {registry}/{repository}")
    query = select(tag_events).where(tag_events.c.tag_id == tag_id)
    events = keyset_page(session, query, (tag_events.c.id,), size, after, descending=True)
    return Page(
        [views.TagEventView(tag, e.old_digest, e.new_digest, e.observed_at) for e in events.items],
        events.next_after,
    )


def views_of(page: Page[Any], view: Callable[[Any], V]) -> Page[V]:
    """A page of rows as records: nothing above the store holds a row."""
    return Page([view(row) for row in page.items], page.next_after)


def registry_for_host(session: Reads, host: str) -> RegistryView | None:
    """The registry stored under ``host`` (letter case aside), or None."""
    stored = select(registries).where(func.lower(registries.c.host) == host.lower())
    row = session.execute(stored).first()
    return None if row is None else views.RegistryView.of(row)


def list_registries(session: Reads, size: int, after: Key | None) -> Page[RegistryView]:
    """By name."""
    order = (registries.c.name, registries.c.id)
    page = keyset_page(session, select(registries), order, size, after)
    return views_of(page, views.RegistryView.of)


def list_repositories(
    session: Reads, registry: str, size: int, after: Key | None
) -> Page[RepositoryView]:
    """By path."""
    owner = _registry_id(session, registry)
    query = select(repositories).where(repositories.c.registry_id == owner)
    order = (repositories.c.name, repositories.c.id)
    page = keyset_page(session, query, order, size, after)
    return views_of(page, views.RepositoryView.of)


def list_tags(
    session: Reads, registry: str, repository: str, show_gone: bool, size: int, after: Key | None
) -> Page[TagView]:
    """By tag."""
    repo = _repository(session, registry, repository)
    query = select(tags).where(tags.c.repository_id == repo)
    if not show_gone:
        query = query.where(tags.c.gone_at.is_(None))
    order = (tags.c.name, tags.c.id)
    return views_of(keyset_page(session, query, order, size, after), views.TagView.of)


def list_index_errors(
    session: Reads, registry: str, size: int, after: Key | None
) -> Page[IndexErrorView]:
    """Newest first."""
    owner = _registry_id(session, registry)
    query = select(index_errors).where(index_errors.c.registry_id == owner)
    page = keyset_page(session, query, (index_errors.c.id,), size, after, descending=True)
    return views_of(page, views.IndexErrorView.of)


def _registry_id(session: Reads, name: str) -> int:
    found: int | None = session.scalar(select(registries.c.id).where(registries.c.name == name))
    if found is None:
        raise NotFound(f"no registry named {name!r}")
    return found
