"""Read-side queries of the catalog: plain records for the API and the CLI to present.

Every list is ordered as the API documents it (by name, path, tag or digest; events and errors
newest first) and paginated by keyset: a page ends with the sort key of its last row and the row's
id as tie-breaker (``Page.next_after``), and the next page starts after it, so pages stay stable
while the indexer writes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, or_, select
from sqlalchemy.orm import Session, defer

from catalog.errors import InvalidArgument, NotFound
from catalog.oci.digest import Digest
from catalog.oci.errors import InvalidDigest
from catalog.oci.reference import ImageReference
from catalog.store.models import (
    Attachment,
    Attestation,
    IndexChild,
    IndexErrorRecord,
    Manifest,
    ManifestLocation,
    Provenance,
    Registry,
    Repository,
    Sbom,
    SbomPackage,
    Signature,
    Tag,
    TagEvent,
)
from catalog.store.purls import parse_purl, purl_base

# Re-exported: the records live apart from SQL (catalog/store/views.py) for light importers.
from catalog.store.views import ArtifactView as ArtifactView
from catalog.store.views import AttachmentView as AttachmentView
from catalog.store.views import AttestationView as AttestationView
from catalog.store.views import IndexErrorView as IndexErrorView
from catalog.store.views import Key as Key
from catalog.store.views import LocationView as LocationView
from catalog.store.views import PackageMatch as PackageMatch
from catalog.store.views import PackageView as PackageView
from catalog.store.views import Page as Page
from catalog.store.views import PlatformView as PlatformView
from catalog.store.views import ProvenanceView as ProvenanceView
from catalog.store.views import RegistryView as RegistryView
from catalog.store.views import RepositoryView as RepositoryView
from catalog.store.views import SbomView as SbomView
from catalog.store.views import SignatureView as SignatureView
from catalog.store.views import TagEventView as TagEventView
from catalog.store.views import TagView as TagView

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_CHUNK = 64  # rows read at a time by lists whose items registries size (byte-bounded pages)


T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Budget:
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
    session: Session,
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


def locations_of(session: Session, digests: Collection[str]) -> dict[str, list[LocationView]]:
    """Where each digest lives, with its live tags there: two queries for any number of them."""
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    rows = session.execute(
        select(ManifestLocation, Repository, Registry)
        .join(Repository, ManifestLocation.repository_id == Repository.id)
        .join(Registry, Repository.registry_id == Registry.id)
        .where(ManifestLocation.digest.in_(wanted))
        .order_by(Registry.name, Repository.name)
    ).all()
    tags: dict[tuple[int, str], list[str]] = {}
    for repository_id, digest, name in session.execute(
        select(Tag.repository_id, Tag.digest, Tag.name)
        .where(Tag.digest.in_(wanted), Tag.gone_at.is_(None))
        .order_by(Tag.name)
    ):
        tags.setdefault((repository_id, digest), []).append(name)
    found: dict[str, list[LocationView]] = {d: [] for d in wanted}
    for location, repo, registry in rows:
        found[location.digest].append(
            LocationView(
                registry=registry.name,
                repository=repo.name,
                tags=tags.get((repo.id, location.digest), []),
                first_seen=location.first_seen,
                last_seen=location.last_seen,
                gone=location.gone_at is not None,
            )
        )
    return found


def _attachment_views(rows: list[Attachment]) -> list[AttachmentView]:
    return [
        AttachmentView(a.attachment_digest, a.subject_digest, a.kind, a.scheme, a.artifact_type)
        for a in rows
    ]


def get_artifact(session: Session, digest: str) -> ArtifactView:
    digest = _digest(digest)
    manifest = session.get(Manifest, digest)
    if manifest is None:
        raise NotFound(f"the catalog has no artifact {digest}")
    as_child = session.scalars(
        select(IndexChild).where(IndexChild.child_digest == digest).limit(1)
    ).first()
    children = session.scalars(
        select(IndexChild).where(IndexChild.parent_digest == digest).order_by(IndexChild.position)
    ).all()
    attachments = list(
        session.scalars(
            select(Attachment).where(Attachment.subject_digest == digest).order_by(Attachment.id)
        )
    )
    attached = [a.attachment_digest for a in attachments]
    # The documents themselves (up to 64 MiB each) are not part of the view: never loaded.
    signatures = session.scalars(
        select(Signature)
        .options(defer(Signature.layer), defer(Signature.annotations))
        .where(Signature.attachment_digest.in_(attached))
        .order_by(Signature.id)
    ).all()
    attestations = session.scalars(
        select(Attestation)
        .options(defer(Attestation.statement))
        .where(Attestation.attachment_digest.in_(attached))
        .order_by(Attestation.id)
    ).all()
    sboms = session.scalars(
        select(Sbom).where(Sbom.attachment_digest.in_(attached)).order_by(Sbom.id)
    ).all()
    return ArtifactView(
        digest=digest,
        media_type=manifest.media_type,
        artifact_type=manifest.artifact_type,
        size=manifest.size,
        platform=_platform(as_child) if as_child else None,
        children=[_platform(c) for c in children if c.attests_digest is None],
        locations=locations_of(session, [digest])[digest],
        attachments=_attachment_views(attachments),
        signatures=[
            SignatureView(
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
            for s in signatures
        ],
        attestations=[
            AttestationView(a.attachment_digest, a.predicate_type, provenance_view(a.provenance))
            for a in attestations
        ],
        sboms=[
            SbomView(s.attachment_digest, s.format, s.spec_version, s.tool, s.package_count)
            for s in sboms
        ],
    )


def _platform(child: IndexChild) -> PlatformView:
    return PlatformView(child.child_digest, child.os, child.architecture, child.variant)


def provenance_view(row: Provenance | None) -> ProvenanceView | None:
    if row is None:
        return None
    return ProvenanceView(
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
    select(Tag.digest)
    .join(Repository, Tag.repository_id == Repository.id)
    .join(Registry, Repository.registry_id == Registry.id)
    .where(
        Registry.host == bindparam("host"),
        Repository.name == bindparam("repository"),
        Tag.name == bindparam("tag"),
        Tag.gone_at.is_(None),
    )
)


def tag_params(reference: ImageReference) -> dict[str, str]:
    """The parameters of :data:`TAG_DIGEST` for a tag reference (``latest`` when untagged)."""
    return {
        "host": reference.registry,
        "repository": reference.repository,
        "tag": reference.tag or "latest",
    }


def resolve_reference(session: Session, reference: ImageReference) -> str:
    """The digest a reference names, by the catalog's tags (a digest is taken as it is)."""
    if reference.digest is not None:
        return str(reference.digest)
    digest = session.scalar(TAG_DIGEST, tag_params(reference))
    if digest is None:
        raise NotFound(f"the catalog has no tag {reference}")
    return digest


def list_referrers(
    session: Session,
    digest: str,
    artifact_type: str | None,
    size: int,
    after: Key | None,
    budget: Budget | None = None,
) -> Page[AttachmentView]:
    """By attachment digest."""
    query = select(Attachment).where(Attachment.subject_digest == _digest(digest))
    if artifact_type:
        query = query.where(Attachment.artifact_type == artifact_type)
    order = (Attachment.attachment_digest, Attachment.id)

    def key(row: Any) -> Key:
        return (row[0].attachment_digest, row[0].id)

    views = (
        (view, key(row))
        for rows in _chunks(session, query, order, after, key, size)
        for row, view in zip(rows, _attachment_views([r[0] for r in rows]), strict=True)
    )
    return bounded_page(views, size, budget)


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
    session: Session,
    query: Any,
    columns: tuple[Any, ...],
    size: int,
    after: Key | None,
    *,
    descending: bool = False,
) -> Page[Any]:
    """One page of the ORM rows ``query`` selects, ordered by ``columns`` (attributes of the
    rows: their values are the next page's key)."""
    rows: list[Any] = list(
        session.scalars(_keyset(query, columns, after, descending).limit(size + 1))
    )
    more = len(rows) > size
    rows = rows[:size]
    last = rows[-1] if more and rows else None
    return Page(rows, None if last is None else tuple(getattr(last, c.key) for c in columns))


def search_packages(
    session: Session,
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
    query = (
        select(SbomPackage, Sbom, Attachment)
        .join(Sbom, SbomPackage.sbom_id == Sbom.id)
        .join(Attachment, Attachment.attachment_digest == Sbom.attachment_digest)
    )
    if purl:
        parsed = parse_purl(purl)
        query = query.where(SbomPackage.purl_base == purl_base(parsed))
        if parsed.version:
            query = query.where(SbomPackage.version == parsed.version)
    elif name:
        query = query.where(SbomPackage.name == name)
        if version:
            query = query.where(SbomPackage.version == version)
    else:
        raise InvalidArgument("give a package URL, or a package name (and optionally a version)")
    order = (Attachment.subject_digest, SbomPackage.id)

    def key(row: Any) -> Key:
        return (row[2].subject_digest, row[0].id)

    def matches(rows: Sequence[Any]) -> Iterator[tuple[PackageMatch, Key]]:
        where = locations_of(session, [attachment.subject_digest for _, _, attachment in rows])
        for row in rows:
            p, attachment = row[0], row[2]
            package = PackageView(p.purl, p.type, p.namespace, p.name, p.version, list(p.licenses))
            yield (
                PackageMatch(package, attachment.subject_digest, where[attachment.subject_digest]),
                key(row),
            )

    found = (
        match
        for rows in _chunks(session, query, order, after, key, size)
        for match in matches(rows)
    )
    return bounded_page(found, size, budget)


def _repository(session: Session, registry: str, repository: str) -> Repository:
    row = session.scalar(
        select(Repository)
        .join(Registry, Repository.registry_id == Registry.id)
        .where(Registry.name == registry, Repository.name == repository)
    )
    if row is None:
        raise NotFound(f"no repository {repository!r} in registry {registry!r}")
    return row


def tag_history(
    session: Session, registry: str, repository: str, tag: str, size: int, after: Key | None
) -> Page[TagEventView]:
    """Newest first."""
    repo = _repository(session, registry, repository)
    tag_row = session.scalar(select(Tag).where(Tag.repository_id == repo.id, Tag.name == tag))
    if tag_row is None:
        raise NotFound(f"no tag {tag!r} in {registry}/{repository}")
    query = select(TagEvent).where(TagEvent.tag_id == tag_row.id)
    events: Page[TagEvent] = keyset_page(
        session, query, (TagEvent.id,), size, after, descending=True
    )
    return Page(
        [TagEventView(tag, e.old_digest, e.new_digest, e.observed_at) for e in events.items],
        events.next_after,
    )


def views_of(page: Page[Any], view: Callable[[Any], V]) -> Page[V]:
    """A page of ORM rows as records: nothing above the store holds a row."""
    return Page([view(row) for row in page.items], page.next_after)


def registry_for_host(session: Session, host: str) -> RegistryView:
    row = session.scalar(select(Registry).where(Registry.host == host))
    if row is None:
        raise NotFound(f"no registry with host {host!r} in the catalog")
    return RegistryView.of(row)


def list_registries(session: Session, size: int, after: Key | None) -> Page[RegistryView]:
    """By name."""
    page = keyset_page(session, select(Registry), (Registry.name, Registry.id), size, after)
    return views_of(page, RegistryView.of)


def list_repositories(
    session: Session, registry: str, size: int, after: Key | None
) -> Page[RepositoryView]:
    """By path."""
    owner = session.scalar(select(Registry).where(Registry.name == registry))
    if owner is None:
        raise NotFound(f"no registry named {registry!r}")
    query = select(Repository).where(Repository.registry_id == owner.id)
    page = keyset_page(session, query, (Repository.name, Repository.id), size, after)
    return views_of(page, RepositoryView.of)


def list_tags(
    session: Session, registry: str, repository: str, show_gone: bool, size: int, after: Key | None
) -> Page[TagView]:
    """By tag."""
    repo = _repository(session, registry, repository)
    query = select(Tag).where(Tag.repository_id == repo.id)
    if not show_gone:
        query = query.where(Tag.gone_at.is_(None))
    return views_of(keyset_page(session, query, (Tag.name, Tag.id), size, after), TagView.of)


def list_index_errors(
    session: Session, registry: str, size: int, after: Key | None
) -> Page[IndexErrorView]:
    """Newest first."""
    owner = session.scalar(select(Registry).where(Registry.name == registry))
    if owner is None:
        raise NotFound(f"no registry named {registry!r}")
    query = select(IndexErrorRecord).where(IndexErrorRecord.registry_id == owner.id)
    page = keyset_page(session, query, (IndexErrorRecord.id,), size, after, descending=True)
    return views_of(page, IndexErrorView.of)
