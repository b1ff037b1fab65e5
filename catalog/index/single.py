"""Index one digest now: the manifest, what is attached to it by every scheme, and the
attachments' documents. What the gate does when the catalog has nothing for an image."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.formats.classify import manifest_kind
from catalog.index.layers import decode_attachment
from catalog.oci.attachments import find_attachments
from catalog.oci.errors import OCIError
from catalog.oci.manifest import Manifest
from catalog.oci.repository import Repository
from catalog.store import content, documents
from catalog.store.db import lost_a_race_to_insert
from catalog.store.documents import DecodedDocuments


async def index_digest(
    sessions: sessionmaker[Session], repo: Repository, digest: str, *, again: bool = True
) -> int:
    """Fetch and record ``digest``'s attachments from ``repo``; returns how many were new.

    Another recording of the same content may commit between what this one read and what it
    writes (a crawl, a check of the same image in another repository, another server): its
    rows then fail this one's unique keys, and ``again`` asks once more for what is left."""
    subject = await repo.get_manifest(digest)
    found = await find_attachments(repo, subject)
    manifests: dict[str, Manifest] = {digest: subject}

    async def fetch(attached: str) -> None:
        # An attachment that cannot be read is simply not evidence.
        with contextlib.suppress(OCIError):
            manifests[attached] = await repo.get_manifest(attached)

    await asyncio.gather(*(fetch(str(a.descriptor.digest)) for a in found))
    links = [
        content.Link(
            str(a.subject),
            str(a.descriptor.digest),
            manifest_kind(manifests[str(a.descriptor.digest)]),
            a.scheme,
            a.artifact_type,
        )
        for a in found
        if str(a.descriptor.digest) in manifests
    ]
    wanted = {link.attachment for link in links if link.kind != "other"}
    known = await asyncio.to_thread(_known, sessions, manifests.keys(), links, wanted)
    decoded: dict[str, DecodedDocuments] = {}
    try:
        for attached in sorted(wanted - known.decoded):
            decoded[attached] = await decode_attachment(repo, manifests[attached])
    except BaseException:  # cancelled (every check waiting has left) or failed: none recorded
        for docs in decoded.values():
            docs.close()  # an SBOM left to stream holds a temporary file
        raise
    new_manifests = [m for digest, m in manifests.items() if digest not in known.manifests]
    new_links = [link for link in links if (link.subject, link.attachment) not in known.links]
    if not (new_manifests or new_links or decoded):
        # Nothing to write, so no write: the gate asks this for images the catalog holds, and
        # a write would wait on the database's write lock (SQLite's is the whole file).
        return 0
    try:
        # Recorded on a worker thread: the gate asks from the event loop.
        return await asyncio.to_thread(_record, sessions, new_manifests, new_links, decoded)
    except IntegrityError as exc:
        if not again or not lost_a_race_to_insert(exc):
            raise
    return await index_digest(sessions, repo, digest, again=False)


class _Known(NamedTuple):
    manifests: set[str]
    links: set[tuple[str, str]]
    decoded: set[str]


def _known(
    sessions: sessionmaker[Session],
    digests: Iterable[str],
    links: list[content.Link],
    wanted: set[str],
) -> _Known:
    """What the catalog holds already of what was found, in one read transaction."""
    with sessions() as session:
        return _Known(
            content.known_manifests(session, digests),
            content.links_to(session, {link.attachment for link in links}),
            documents.decoded(session, wanted),
        )


def _record(
    sessions: sessionmaker[Session],
    manifests: list[Manifest],
    links: list[content.Link],
    decoded: dict[str, DecodedDocuments],
) -> int:
    try:
        with sessions.begin() as session:
            content.add_manifests(session, manifests)
            new = content.add_attachments(session, links)
            for attached, docs in decoded.items():
                documents.store(session, attached, docs)
        return new
    finally:
        for docs in decoded.values():
            docs.close()
