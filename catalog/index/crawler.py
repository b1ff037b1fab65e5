"""Crawl one registry (or image layout) into the catalog, incrementally.

Per repository: list tags; HEAD the tags the catalog already knows (a GET only when a tag moved
to content the catalog lacks), or, where the registry's ETag is the digest, GET them with
``If-None-Match`` (``304`` while a tag stays put, the manifest in the same request when it moved);
GET new tags; record index children, attachments found by every scheme (a tagged manifest's own
``subject`` among them), and their documents; then mark vanished tags and manifests as gone.

No ``await`` happens inside a session, and no session is opened on the event loop: reads run on
worker threads, so a busy database never stalls the server's other calls. Writes (and the
package decoding of SBOMs too large to decode ahead, which streams into them) run on one writer
thread, so recording one repository overlaps crawling the next while the database still sees a
single writer, as SQLite wants; it records repositories in groups, one transaction for several,
a savepoint each (``store.grouped``, ``index._writer``); one found as recorded takes none: what
its re-index records (its locations seen now, its row stamped) is written with that of the other
unchanged ones at the group's commit, a statement of a kind for all. A repository's state before
its crawl (its row and live tags, which of their manifests' documents are recorded, the links to
them) is read once, with that of the next repositories in line, on a reader thread of its own,
where SBOMs small enough are also decoded ahead (in worker processes once the crawl has met
enough of them, ``_preparer``): the requests of a repository start without waiting behind the
recording of others. Reads that must see the crawl's own writes (is this manifest known now? are
these documents recorded now?) queue on the writer thread, behind them, and ask what its open
group recorded (as its units noted it), then what is committed, on a connection of the writer's
own (``store.grouped``); they are not made when nothing needs asking.

A repository's documents are decoded in batches of at most ``DOCUMENT_BATCH`` bytes held; each
batch but the last is recorded on its own (a savepoint of the writer's transaction), so memory
stays bounded whatever a repository holds.

What a registry says is checked before it is kept: a repository or tag name off the grammar, a
manifest that cannot be parsed, a document that cannot be decoded is an index error (one line)
and the crawl goes on; a repository whose recording fails is rolled back and recorded as one.
One the database ends in a lock conflict (another crawl waiting for it, and it for the other),
in its own recording or in one of its batches of documents, is crawled and recorded again, once,
after its group's commit.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from catalog.formats.classify import COSIGN_SUFFIX_KIND, manifest_kind
from catalog.index._preparer import SbomPreparer
from catalog.index._writer import WriterThread
from catalog.index.layers import decode_attachment, held_bytes
from catalog.index.progress import IndexStats, ProgressCallback
from catalog.index.sources import RepositoryOpener
from catalog.oci import mediatypes as mt
from catalog.oci.attachments import attachment_type
from catalog.oci.boundedjson import first_line
from catalog.oci.digest import Digest, as_digest
from catalog.oci.errors import InvalidReference, NotInRegistry, OCIError
from catalog.oci.globs import is_glob, matcher
from catalog.oci.manifest import Manifest
from catalog.oci.reference import validate_repository, validate_tag
from catalog.oci.repository import RemoteRepository, Repository
from catalog.store import content, documents
from catalog.store.db import lost_a_lock_conflict
from catalog.store.documents import DecodedDocuments
from catalog.store.grouped import GroupFailed, GroupTransaction
from catalog.store.models import IndexErrorRecord, UndecodableDocument
from catalog.store.registries import (
    RepositoryId,
    add_repository,
    get_registry,
    mark_repositories_gone,
    repository,
)

log = logging.getLogger(__name__)

_COSIGN_TAG = re.compile(r"^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})\.(sig|att|sbom)$")
_FALLBACK_TAG = re.compile(r"^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})$")
DOCUMENT_BATCH = 32 * 1024 * 1024  # bytes of documents a repository's crawl holds at once
# Repositories whose state before the crawl is read together: a few statements for many
# repositories; small, as that state (two batches at most) is held until each one's crawl.
BEFORE_BATCH = 16
# The counters a repository's recording adds to (on the writer thread): put back when the
# recording is undone, to be done again.
_RECORDING_COUNTERS = (
    "manifests_new",
    "attachments_new",
    "documents",
    "tag_events",
    "tags_gone",
    "locations_gone",
    "errors",
)
# Unchanged repositories recorded together at most (their group is committed then, if not
# before): what a re-index of each needs done, a statement of a kind for all of them.
UNCHANGED_BATCH = 256
_REFERENCE_COLUMN = 255  # index_errors.repository and .reference
_REASON = 4000  # characters of an index error's reason kept
_SHOWN = 80  # characters of a refused name shown in its error
# What the writer's units note for the reads that must see them (``GroupTransaction.note``):
# manifests recorded, attachments whose documents are recorded, and those refused (→ why).
_MANIFESTS, _DECODED, _REFUSED = "manifests", "decoded", "refused"
_A = TypeVar("_A")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class _Before:
    """A repository's state before this crawl: its live tags (tag → digest), and which of their
    digests have their documents recorded (``decoded``) or were found undecodable (``refused``,
    digest → why). What is recorded or refused stays so: the crawl trusts these to the end."""

    tags: dict[str, str]
    decoded: set[str]
    refused: dict[str, str]


class _Ahead(NamedTuple):
    """What a repository's recording reads ahead, with its state before the crawl: its row
    (one not gone) or that it had none, the recorded links (subject, attachment) to its
    tagged manifests, and its manifest locations."""

    row: RepositoryId | None  # None: the catalog had no such repository
    links: set[tuple[str, str]]
    located: dict[str, content.Location]


@dataclass(slots=True)
class _RepoScan:
    """What the network half of a repository crawl found, for the database half to record."""

    name: str
    listed: bool = False
    tags: dict[str, str] = field(default_factory=dict)  # tag → digest, for every tag seen now
    # The live tags before the crawl, as the reader read them: what the recording compares
    # with (the repository's tags are written only by its own recording, which comes after).
    before: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, Manifest] = field(default_factory=dict)  # fetched this crawl
    links: list[content.Link] = field(default_factory=list)
    documents: dict[str, DecodedDocuments] = field(default_factory=dict)
    errors: list[tuple[str | None, str]] = field(default_factory=list)
    again: bool = False  # crawled again, its recording undone: a second conflict is an error
    undone: bool = False  # a batch of its documents was undone: it is crawled again


class Crawler:
    """Indexes one registry. ``open_repository`` gives a :class:`Repository` for a name."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry_name: str,
        open_repository: RepositoryOpener,
        *,
        registry_id: int,
        patterns: Sequence[str],
        concurrency: int = 8,
        on_progress: ProgressCallback | None = None,
        only: Sequence[str] | None = None,
    ) -> None:
        self.sessions = sessions
        # Crawl just these repositories (a push event's) that the filter admits, and mark no
        # other repository gone.
        self.only = None if only is None else sorted(set(only))
        self.patterns = list(patterns)  # the registry's repository filter
        self.registry_name = registry_name
        self.open_repository = open_repository
        self.concurrency = concurrency
        self.on_progress = on_progress
        self.stats = IndexStats()
        self._refused_names: list[str] = []  # repository names off the grammar, as errors
        self._writer: WriterThread | None = None
        self._reader: ThreadPoolExecutor | None = None  # state before a crawl; decoding
        self._registry_id = registry_id
        # The repositories of the run, in order, and their states before it by batch.
        self._names: list[str] = []
        self._positions: dict[str, int] = {}
        self._befores: dict[int, asyncio.Future[dict[str, _Before]]] = {}
        self._preparer: SbomPreparer | None = None  # small SBOMs: reader or worker processes
        # What the recording of a repository not gone needs, read with its state before the
        # crawl: no statement of its own for it (each a round trip on PostgreSQL).
        self._ahead: dict[str, _Ahead] = {}
        # Unchanged repositories crawled, recorded at their group's commit (``_record_unchanged``).
        self._unchanged: list[tuple[RepositoryId, set[str], dict[str, content.Location]]] = []

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)

    async def run(self) -> IndexStats:
        patterns = self.patterns
        self.stats.phase = "listing repositories"
        self._report()
        if self.only is None:
            names = await self._repository_names(patterns)
        else:
            names = _admitted(self.only, patterns)
        self.stats.repositories_total = len(names)
        self.stats.phase = "indexing"
        self._report()
        self._names, self._positions = names, {name: n for n, name in enumerate(names)}
        limit = asyncio.Semaphore(self.concurrency)
        loop = asyncio.get_running_loop()

        async def one(name: str) -> None:
            async with limit:
                scan = await self._scan(name)
            if not await loop.run_in_executor(writer, self._record_scan, scan):
                async with limit:  # its recording undone (a lock conflict): crawled again
                    scan = await self._scan(name, again=True)
                await loop.run_in_executor(writer, self._record_scan, scan)
            self.stats.repositories_done += 1
            self._report()

        with (
            WriterThread(GroupTransaction(self.sessions), "catalog-writer") as writer,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-reader") as reader,
        ):
            self._writer, self._reader = writer, reader
            self._preparer = SbomPreparer(reader)
            try:
                await asyncio.gather(*(one(n) for n in names))
            finally:
                await self._preparer.close()
            await loop.run_in_executor(writer, writer.group.commit)  # the last group
        await asyncio.to_thread(self._finish, patterns, names)
        self.stats.phase = "done"
        self._report()
        return self.stats

    def _finish(self, patterns: list[str], names: list[str]) -> None:
        """Record the refused repository names; mark the repositories no longer listed gone."""
        listed_all = self.only is None and not patterns_are_names(patterns)
        gone = self.open_repository.can_list and listed_all
        if not (gone or self._refused_names):
            return  # a push event's run: nothing to write
        with self.sessions.begin() as session:
            for reason in self._refused_names:
                session.add(
                    IndexErrorRecord(registry_id=self._registry_id, reason=reason[:_REASON])
                )
            self.stats.errors += len(self._refused_names)
            if gone:
                registry = get_registry(session, self.registry_name)
                mark_repositories_gone(session, registry, set(names))

    async def _repository_names(self, patterns: list[str]) -> list[str]:
        if patterns_are_names(patterns):
            return sorted(set(patterns))
        names = [n async for n in self.open_repository.list_repositories()]
        if patterns:
            wanted = matcher(patterns)
            names = [n for n in names if wanted.fullmatch(n)]
        valid = []
        for name in sorted(set(names)):
            try:
                valid.append(validate_repository(name))
            except InvalidReference as exc:
                reason = f"repository {name[:_SHOWN]!r} skipped: {first_line(exc)}"
                self._refused_names.append(reason)
        return valid

    # -- network half ----------------------------------------------------------------------

    async def _scan(self, name: str, again: bool = False) -> _RepoScan:
        """The repository as the registry has it now (``again``: after its recording was
        undone; its state before is then read anew, and its tags are not counted twice)."""
        scan = _RepoScan(name, again=again)
        repo = self.open_repository(name)
        try:
            listed = _valid_tags([t async for t in repo.tags()], scan)
        except OCIError as exc:
            scan.errors.append((None, f"cannot list tags: {exc}"))
            return scan
        scan.listed = True
        if not again:
            self.stats.tags_seen += len(listed)
        before = await (self._state_now(name) if again else self._state_before(name))
        known = scan.before = before.tags
        if isinstance(repo, RemoteRepository) and repo.client.etag_is_digest is None:
            # One known tag first: its answer tells whether the others may go conditional.
            first = next((tag for tag in listed if tag in known), None)
            if first is not None:
                await self._resolve_tag(repo, scan, first, known[first])
                listed = [tag for tag in listed if tag != first]
        await asyncio.gather(
            *(self._resolve_tag(repo, scan, tag, known.get(tag)) for tag in listed)
        )
        await self._fetch_children(repo, scan)
        await self._find_links(repo, scan)
        await self._decode(repo, scan, before)
        return scan

    async def _get(self, repo: Repository, scan: _RepoScan, ref: str) -> Manifest | None:
        try:
            manifest = await repo.get_manifest(ref)
        except NotInRegistry:
            return None
        except OCIError as exc:
            scan.errors.append((ref, str(exc)))
            return None
        finally:
            self.stats.manifest_gets += 1
        scan.manifests[str(manifest.digest)] = manifest
        return manifest

    async def _resolve_tag(
        self, repo: Repository, scan: _RepoScan, tag: str, known: str | None
    ) -> None:
        if known is None:
            manifest = await self._get(repo, scan, tag)
            if manifest is not None:
                scan.tags[tag] = str(manifest.digest)
            return
        if isinstance(repo, RemoteRepository) and repo.client.etag_is_digest:
            await self._get_unless(repo, scan, tag, known)
            return
        try:
            descriptor = await repo.resolve(tag)
        except OCIError as exc:
            scan.errors.append((tag, str(exc)))
            scan.tags[tag] = known  # unknown now is not gone: keep what we had
            return
        if descriptor is None:
            return
        digest = str(descriptor.digest)
        scan.tags[tag] = digest
        if digest != known and await self._missing(scan, [digest]):
            await self._get(repo, scan, digest)

    async def _get_unless(
        self, repo: RemoteRepository, scan: _RepoScan, tag: str, known: str
    ) -> None:
        """A known tag on a registry whose ETag is the digest: one conditional GET, answered
        ``304`` while the tag stays put (as cheap as a HEAD) and with the manifest when it
        moved (where a HEAD would need a GET after it)."""
        try:
            manifest = await repo.get_manifest_unless(tag, Digest.parse(known))
        except NotInRegistry:
            return
        except OCIError as exc:
            scan.errors.append((tag, str(exc)))
            scan.tags[tag] = known  # unknown now is not gone: keep what we had
            return
        if manifest is None:
            scan.tags[tag] = known
            return
        self.stats.manifest_gets += 1
        scan.manifests[str(manifest.digest)] = manifest
        scan.tags[tag] = str(manifest.digest)

    async def _off_loop(self, read: Callable[[_A], _R], arg: _A) -> _R:
        """A call on the crawl's writer thread (a read that must see its writes, a batch of
        documents): the crawl adds two threads of its own (writer and reader) to those competing
        with the event loop for the GIL, and none to the shared default pool, where the gate's
        reads would queue behind it."""
        assert self._writer is not None
        return await asyncio.get_running_loop().run_in_executor(self._writer, read, arg)

    async def _state_before(self, name: str) -> _Before:
        """The state of ``name`` before this crawl, read with that of the next repositories
        (``BEFORE_BATCH`` in one go, on the reader thread, the batch after it read ahead): a
        few statements for many repositories, and no wait for most. Not behind the writer: a
        repository's tags are written only by its own recording, which comes after, and
        documents found recorded or refused stay so."""
        number = self._positions[name] // BEFORE_BATCH
        for ahead in (number, number + 1):
            names = self._names[ahead * BEFORE_BATCH : (ahead + 1) * BEFORE_BATCH]
            if ahead not in self._befores and names:
                assert self._reader is not None
                loop = asyncio.get_running_loop()
                self._befores[ahead] = loop.run_in_executor(self._reader, self._before, names)
        return (await self._befores[number]).pop(name)

    async def _state_now(self, name: str) -> _Before:
        """The state of ``name`` as committed now, alone (``_state_before`` reads it once)."""
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        return (await loop.run_in_executor(self._reader, self._before, [name]))[name]

    def _before(self, names: list[str]) -> dict[str, _Before]:
        with self.sessions() as session:
            states = content.repository_states(session, self._registry_id, names)
            digests = {digest for state in states.values() for digest in state.tags.values()}
            decoded, refused = documents.recorded_or_refused(session, digests)
            links: dict[str, set[tuple[str, str]]] = {}  # by attachment
            for link in content.links_to(session, digests):
                links.setdefault(link[1], set()).add(link)
            live = [state.id for state in states.values() if state.id is not None]
            located = content.locations_of(session, live) if live else {}
        befores = {}
        for name in names:
            state = states.get(name)
            of_one = state.tags if state else {}
            digests = set(of_one.values())
            befores[name] = _Before(
                of_one,
                decoded & digests,
                {d: why for d, why in refused.items() if d in digests},
            )
            if state is None:
                self._ahead[name] = _Ahead(None, set(), {})
            elif state.id is not None:
                # The recording's, read ahead: links to the tagged manifests (cosign tags'
                # among them) are recorded, and links are never removed; a repository's
                # locations are written by its recordings, this crawl's after this read (one
                # of another process's crawl in between: inserts conflict-free, and a location
                # it added that this crawl finds gone is marked so by the next re-index).
                mine = {link for digest in digests for link in links.get(digest, ())}
                self._ahead[name] = _Ahead(RepositoryId(state.id), mine, located.get(state.id, {}))
        return befores

    def _known(self, digests: set[str]) -> set[str]:
        assert self._writer is not None
        group = self._writer.group
        known = digests & group.noted(_MANIFESTS).keys()  # recorded in the open group
        if asked := digests - known:
            with group.reading() as session:
                known |= content.known_manifests(session, asked)
        return known

    async def _missing(self, scan: _RepoScan, digests: Iterable[str]) -> list[str]:
        wanted = {d for d in digests if d not in scan.manifests}
        if not wanted:
            return []
        return sorted(wanted - await self._off_loop(self._known, wanted))

    async def _fetch_children(self, repo: Repository, scan: _RepoScan) -> None:
        pending = [m for m in scan.manifests.values() if m.manifests]
        while pending:
            children = [str(d.digest) for m in pending for d in m.manifests]
            fetched = await asyncio.gather(
                *(self._get(repo, scan, d) for d in await self._missing(scan, children))
            )
            pending = [m for m in fetched if m is not None and m.manifests]

    async def _find_links(self, repo: Repository, scan: _RepoScan) -> None:
        """Attachments by cosign tag, fallback tag, in-index and the referrers API."""
        fallback: list[tuple[str, Manifest]] = []
        for tag, digest in scan.tags.items():
            if m := _COSIGN_TAG.match(tag):
                subject = f"{m.group(1)}:{m.group(2)}"
                manifest = scan.manifests.get(digest)
                kind = manifest_kind(manifest) if manifest else COSIGN_SUFFIX_KIND[m.group(3)]
                artifact = attachment_type(manifest) if manifest else None
                scan.links.append(content.Link(subject, digest, kind, "cosign-tag", artifact))
            elif (m := _FALLBACK_TAG.match(tag)) and digest in scan.manifests:
                index = scan.manifests[digest]
                if index.media_type == mt.OCI_INDEX:
                    fallback.append((f"{m.group(1)}:{m.group(2)}", index))
        referrers = await self._referrers_api(repo, scan)
        wanted = [str(d.digest) for _, index in fallback for d in index.manifests]
        wanted += [d for _, d, _ in referrers]
        missing = await self._missing(scan, wanted)
        await asyncio.gather(*(self._get(repo, scan, d) for d in missing))
        for subject, index in fallback:
            for d in index.manifests:
                self._link(scan, subject, str(d.digest), "fallback-tag", d.artifact_type)
        for subject, digest, artifact_type in referrers:
            self._link(scan, subject, digest, "referrers-api", artifact_type)
        for manifest in list(scan.manifests.values()):
            for d in manifest.manifests:
                target = d.attests
                if target:
                    if (named := as_digest(target)) is not None:
                        self._link(scan, str(named), str(d.digest), "in-index", None)
                    else:
                        reason = f"attestation {d.digest} names no digest: {target[:_SHOWN]!r}"
                        scan.errors.append((str(manifest.digest), reason))
        self._subject_links(scan)

    def _subject_links(self, scan: _RepoScan) -> None:
        """A tagged manifest with a ``subject`` is that subject's referrer, even where no
        referrers API or fallback tag lists it (``oras attach`` to Distribution 2.8 without
        ``--distribution-spec`` tagging, a copy that dropped the fallback index)."""
        linked = {(link.subject, link.attachment) for link in scan.links}
        for digest in sorted(set(scan.tags.values())):
            manifest = scan.manifests.get(digest)
            if manifest is None or manifest.subject is None:
                continue
            subject = str(manifest.subject.digest)
            if (subject, digest) not in linked:
                self._link(scan, subject, digest, "subject-field", None)

    def _link(
        self, scan: _RepoScan, subject: str, digest: str, scheme: str, artifact_type: str | None
    ) -> None:
        manifest = scan.manifests.get(digest)
        kind = manifest_kind(manifest) if manifest else "other"
        if manifest is not None:
            artifact_type = artifact_type or attachment_type(manifest)
        scan.links.append(content.Link(subject, digest, kind, scheme, artifact_type))

    async def _referrers_api(
        self, repo: Repository, scan: _RepoScan
    ) -> list[tuple[str, str, str | None]]:
        if not self.open_repository.may_have_referrers_api():
            return []
        subjects = sorted(set(scan.tags.values()))
        found: list[tuple[str, str, str | None]] = []
        for subject in subjects:
            try:
                result = await repo.referrers(Digest.parse(subject), fallback=False)
            except OCIError as exc:
                scan.errors.append((subject, f"referrers: {exc}"))
                continue
            if result.scheme != "referrers-api":
                break  # the registry has no API: the fallback tags were already read
            found += [(subject, str(d.digest), d.artifact_type) for d in result.descriptors]
        return found

    async def _decode(self, repo: Repository, scan: _RepoScan, before: _Before) -> None:
        candidates = {link.attachment for link in scan.links if link.kind != "other"}
        done = candidates & before.decoded
        refused = {d: why for d, why in before.refused.items() if d in candidates}
        # Those the repository's tags did not lead to before: asked behind the crawl's writes.
        if unsettled := candidates - done - refused.keys():
            now_done, now_refused = await self._off_loop(self._decoded, unsettled)
            done |= now_done
            refused |= now_refused
        for digest, reason in sorted(refused.items()):
            scan.errors.append((digest, f"{reason} (as when first read; not fetched again)"))
        todo = sorted(candidates - done - refused.keys())
        await asyncio.gather(*(self._get(repo, scan, d) for d in todo if d not in scan.manifests))
        batches = _batches([scan.manifests[d] for d in todo if d in scan.manifests])

        async def one(manifest: Manifest) -> None:
            decoded = await decode_attachment(repo, manifest, self._reader, self._preparer)
            scan.documents[str(manifest.digest)] = decoded

        for number, batch in enumerate(batches, start=1):
            await asyncio.gather(*(one(m) for m in batch))
            if number < len(batches):  # the last batch is recorded with the repository
                await self._off_loop(self._record_documents, scan)

    def _decoded(self, candidates: set[str]) -> tuple[set[str], dict[str, str]]:
        assert self._writer is not None
        group = self._writer.group
        # Those the open group recorded or refused, then what is committed.
        done = candidates & group.noted(_DECODED).keys()
        noted = group.noted(_REFUSED).items()
        refused = {d: why for d, why in noted if d in candidates and why is not None}
        if asked := candidates - done - refused.keys():
            with group.reading() as session:
                now_done, now_refused = documents.recorded_or_refused(session, asked)
            done |= now_done
            refused |= now_refused
        return done, refused

    # -- database half ---------------------------------------------------------------------

    def _record_documents(self, scan: _RepoScan) -> None:
        """Record the documents decoded so far, in a unit of the writer's group of their own,
        and let them go; their errors are recorded with the repository. One the database ends
        in a lock conflict is undone (``_undo``) for the repository to be crawled again, which
        fetches them again (they are not recorded)."""
        assert self._writer is not None
        group = self._writer.group
        held, scan.documents = scan.documents, {}
        counted = self._counted()
        try:
            with group.unit() as session:
                self._store(session, held)
        except GroupFailed:
            raise  # the database's failure, not the documents': the crawl stops
        except Exception as exc:
            if not scan.again and lost_a_lock_conflict(exc):
                self._undo(scan, counted, exc)
                return
            reason = f"cannot record documents ({type(exc).__name__}: {first_line(exc)})"
            scan.errors.extend((digest, reason) for digest in held)
        else:
            for digest, decoded in held.items():
                scan.errors.extend((digest, reason) for reason in decoded.errors)
        finally:
            _close(held)
        group.commit_if_due()

    def _store(self, session: Session, held: dict[str, DecodedDocuments]) -> None:
        """Record attachments' documents; one none of whose documents could be decoded is
        recorded as undecodable (unless a layer could not even be fetched: that may pass)."""
        assert self._writer is not None
        recorded: dict[str, str | None] = {}
        refused: dict[str, str | None] = {}
        group = self._writer.group
        # Prepared SBOMs' package rows once the unit has ended whole, outside its savepoint.
        counts = documents.store_all(session, held, after_unit=group.after_unit)
        for digest, stored in counts.items():
            self.stats.documents += stored
            decoded = held[digest]
            if stored:
                recorded[digest] = None
            elif decoded.errors and not decoded.unfetched:
                reason = refused[digest] = "; ".join(decoded.errors)[:_REASON]
                session.merge(UndecodableDocument(digest=digest, reason=reason))
        group.note(_DECODED, recorded)  # for _decoded, before the group's commit
        group.note(_REFUSED, refused)

    def _counted(self) -> list[int]:
        """What a recording adds to, as it is before one (``_undo`` puts it back)."""
        return [getattr(self.stats, name) for name in _RECORDING_COUNTERS]

    def _undo(self, scan: _RepoScan, counted: list[int], exc: Exception) -> None:
        """After a unit of the scan's the database ended in a lock conflict (rolled back): what
        it counted put back and its group committed, which ends the other transaction's wait;
        the repository is to be crawled again."""
        assert self._writer is not None
        for name, value in zip(_RECORDING_COUNTERS, counted, strict=True):
            setattr(self.stats, name, value)
        self._writer.group.commit()
        scan.undone = True
        why = first_line(getattr(exc, "orig", None) or exc)  # the database's words
        log.info("%s: recorded again after a lock conflict: %s", scan.name, why)

    def _record_or_fail(self, scan: _RepoScan) -> bool:
        """Record the scan, as a unit of the writer's group (a savepoint); when that fails
        (content the database refuses, a bug), the unit is rolled back and the repository's
        failure recorded instead, so that one repository never stops the crawl. When even that
        cannot be written, or the group cannot write what its units left for after them
        (``GroupFailed``) or be committed, the database is what fails: the crawl stops with
        it.

        Unless the repository is crawled ``again``, a unit the database ended in a lock
        conflict (or one of its batches of documents, ``undone``) is only undone: the group is
        committed and ``False`` returned, for the repository to be crawled and recorded again.
        Two crawls of one PostgreSQL database recording the same new rows each wait for the
        other's group (a deadlock); the commit ends the other's wait, and the rows it waited
        for are there when the repository is recorded again."""
        assert self._writer is not None
        group = self._writer.group
        if scan.undone:
            _close(scan.documents)
            return False
        counted = self._counted()
        try:
            with group.unit() as session:
                self._record(session, scan)
        except GroupFailed:
            raise
        except Exception as exc:
            if not scan.again and lost_a_lock_conflict(exc):
                _close(scan.documents)
                self._undo(scan, counted, exc)
                return False
            reason = f"cannot record the repository ({type(exc).__name__}: {first_line(exc)})"
            try:
                with group.unit() as session:
                    self._record(session, _RepoScan(scan.name, errors=[(None, reason)]))
            except Exception:
                raise exc from None
            finally:
                _close(scan.documents)
        group.commit_if_due()
        return True

    def _record_scan(self, scan: _RepoScan) -> bool:
        """Record the scan: an unchanged repository's with the others of its group, at its
        commit; any other in a unit of its own (``_record_or_fail``, which may only undo it:
        ``False``)."""
        ahead = self._ahead.get(scan.name)
        if ahead is None or ahead.row is None or not _unchanged(scan, ahead):
            return self._record_or_fail(scan)
        del self._ahead[scan.name]
        assert self._writer is not None
        group = self._writer.group
        self._unchanged.append((ahead.row, set(scan.tags.values()), ahead.located))
        group.at_commit(self._record_unchanged)
        if len(self._unchanged) >= UNCHANGED_BATCH:
            group.commit()
        else:
            group.commit_if_due()
        return True

    def _record_unchanged(self, session: Session) -> None:
        """Record the unchanged repositories crawled since the last commit, as ``_record``
        would each (their locations as reachable now, stamped indexed): no savepoint, and a
        statement of a kind for all. Their tags, manifests, links and documents are recorded
        already, and they had no errors."""
        held, self._unchanged = self._unchanged, []
        by_root = content.reachable_by_root(session, {d for _, live, _ in held for d in live})
        wanted = [
            content.LocationsWanted(row, set().union(*(by_root[d] for d in live)), (), located)
            for row, live, located in held
        ]
        for _, gone in content.sync_locations_of(session, wanted):
            self.stats.locations_gone += gone
        content.mark_indexed(session, [row.id for row, _, _ in held])

    def _record(self, session: Session, scan: _RepoScan) -> None:
        ahead = self._ahead.pop(scan.name, None)
        row: content.RepositoryRow | None = None
        added = False  # a row added now: it has no tags yet
        if ahead is not None:
            row = ahead.row
            if row is None:
                row = add_repository(session, self._registry_id, scan.name)
                added = row is not None
        if row is None:  # gone, not read ahead, or created since: the ORM's way
            row = repository(session, self._registry_id, scan.name)
        self.stats.manifests_new += content.add_manifests(session, scan.manifests.values())
        assert self._writer is not None
        self._writer.group.note(_MANIFESTS, dict.fromkeys(scan.manifests))  # for _known
        if scan.listed:
            self._record_tags(session, row, scan, added)
        recorded = ahead.links if ahead else frozenset()
        self.stats.attachments_new += content.add_attachments(session, scan.links, recorded)
        try:
            self._store(session, scan.documents)
        finally:
            _close(scan.documents)
        for digest, decoded in scan.documents.items():
            scan.errors.extend((digest, reason) for reason in decoded.errors)
        if scan.listed:
            live = set(scan.tags.values())
            present = content.reachable(session, live)
            # The scan's manifests are all recorded now (add_manifests): not asked again.
            # Read ahead only for a row read ahead, or added now (none yet): a row another
            # crawl created since has its locations read here.
            located = ahead.located if ahead and (ahead.row is not None or added) else None
            _, gone = content.sync_locations(session, row, present, scan.manifests.keys(), located)
            self.stats.locations_gone += gone
            content.mark_indexed(session, [row.id])
        for reference, reason in scan.errors:
            session.add(
                IndexErrorRecord(
                    registry_id=self._registry_id,
                    repository=scan.name[:_REFERENCE_COLUMN],
                    reference=reference[:_REFERENCE_COLUMN] if reference else None,
                    reason=reason[:_REASON],
                )
            )
        self.stats.errors += len(scan.errors)

    def _record_tags(
        self, session: Session, row: content.RepositoryRow, scan: _RepoScan, added: bool
    ) -> None:
        if scan.tags == scan.before:
            return  # no tag moved, came or went: no ORM row need be loaded
        existing = {} if added else content.tags_of(session, row)
        self.stats.tag_events += len(content.set_tags(session, row, existing, scan.tags))
        for name, tag_row in existing.items():
            if name not in scan.tags and tag_row.gone_at is None:
                content.mark_tag_gone(session, tag_row)
                self.stats.tags_gone += 1
                self.stats.tag_events += 1


def _close(held: dict[str, DecodedDocuments]) -> None:
    """Let go of documents' streamed sources (recorded, refused or undone)."""
    for decoded in held.values():
        decoded.close()


def _unchanged(scan: _RepoScan, ahead: _Ahead) -> bool:
    """Whether the scan found the repository as recorded: its tags listed and where they were,
    nothing fetched, no link new, no error."""
    return (
        scan.listed
        and scan.tags == scan.before
        and not (scan.manifests or scan.documents or scan.errors)
        and all((link.subject, link.attachment) in ahead.links for link in scan.links)
    )


def _batches(manifests: list[Manifest]) -> list[list[Manifest]]:
    """Attachments in batches holding at most ``DOCUMENT_BATCH`` bytes (one larger attachment
    makes a batch alone)."""
    batches: list[list[Manifest]] = [[]]
    held = 0
    for manifest in manifests:
        size = held_bytes(manifest)
        if batches[-1] and held + size > DOCUMENT_BATCH:
            batches.append([])
            held = 0
        batches[-1].append(manifest)
        held += size
    return batches


def _valid_tags(listed: list[str], scan: _RepoScan) -> list[str]:
    """The listed tags that follow the tag grammar, each once; the others are errors."""
    valid = []
    for tag in dict.fromkeys(listed):
        try:
            valid.append(validate_tag(tag))
        except InvalidReference as exc:
            scan.errors.append((None, f"tag {tag[:_SHOWN]!r} skipped: {first_line(exc)}"))
    return valid


def _admitted(names: list[str], patterns: list[str]) -> list[str]:
    """Those of ``names`` the registry's filter admits (all of them without a filter)."""
    if not patterns:
        return names
    wanted = matcher(patterns)
    return [name for name in names if wanted.fullmatch(name)]


def patterns_are_names(patterns: list[str]) -> bool:
    """A filter of plain names needs no ``_catalog`` (which many registries deny)."""
    return bool(patterns) and not any(is_glob(p) for p in patterns)
