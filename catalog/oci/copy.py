"""Digest-preserving copies between repositories (registry or layout, either side).

Order keeps every destination consistent: blobs before the manifest that names them, children
before the index. Manifests go across as their exact bytes. Nothing reaches a destination
unverified: a blob up to ``buffer_limit`` is downloaded and checked whole before its upload
starts; a larger one streams in chunks into an upload session that is committed only after the
source stream's digest checked out (and cancelled otherwise).

A :class:`CopyLedger` shared by the copies into one destination registry makes them cooperate:
each blob and manifest is transferred once per repository however many images share it, and a
blob that landed in one repository is mounted into the others instead of sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable

from catalog.claims import Claims, Held
from catalog.oci.digest import Digest
from catalog.oci.errors import OCIError
from catalog.oci.manifest import Descriptor, Manifest
from catalog.oci.repository import Repository

DEFAULT_BUFFER_LIMIT = 16 * 1024 * 1024
DEFAULT_TRANSFERS = 4  # blobs a copier moves at once unless given its caller's bound
_READ_AHEAD = 4  # source chunks (of up to 4 MiB) buffered while the previous ones upload


# CopyStats's counters, by name.
COUNTERS = (
    "manifests_copied",
    "manifests_skipped",
    "manifests_failed",
    "blobs_copied",
    "blobs_skipped",
    "blobs_failed",
    "blobs_mounted",
    "bytes_copied",
    "bytes_skipped",
    "bytes_failed",
    "referrers_copied",
    "referrers_skipped",
    "referrers_failed",
)


class CopyStats:
    """What copies did, from the copier to a replication task's columns (one per field).

    Everything a copy needs is counted once, as one of three outcomes:

    - ``*_copied``: sent to the destination by this copy;
    - ``*_skipped``: not sent, and not needed: at the destination already, landed earlier in
      this session (another image's copy), or — a blob — mounted from another repository of
      the destination registry;
    - ``*_failed``: sending it failed.

    ``blobs_mounted`` counts the skipped blobs that were mounted: a part of ``blobs_skipped``,
    not a fourth outcome. ``bytes_*`` are the sizes of the blobs counted in ``blobs_*`` (a
    manifest's bytes are not counted). ``referrers_*`` count the attachments (referrer
    manifests, cosign tags) that whoever copies them (replication) handled; their manifests and
    blobs are in ``manifests_*`` and ``blobs_*`` as well.

    (Written out, not a dataclass: the decorator's generated methods are compiled in every
    process that imports this, ~1 ms of a command's start-up.)
    """

    __slots__ = COUNTERS
    __hash__ = None  # type: ignore[assignment]  # counted into: not a key
    manifests_copied: int
    manifests_skipped: int
    manifests_failed: int
    blobs_copied: int
    blobs_skipped: int
    blobs_failed: int
    blobs_mounted: int
    bytes_copied: int
    bytes_skipped: int
    bytes_failed: int
    referrers_copied: int
    referrers_skipped: int
    referrers_failed: int

    def __init__(self, **counts: int) -> None:
        for name in COUNTERS:
            setattr(self, name, counts.pop(name, 0))
        if counts:
            raise TypeError(f"CopyStats has no counter {min(counts)!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"CopyStats({', '.join(f'{k}={v}' for k, v in self.as_dict().items())})"

    def add(self, other: CopyStats) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}


async def gather_all(aws: Iterable[Awaitable[object]]) -> None:
    """Run concurrently; the first failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for aw in aws:
                group.create_task(_awaited(aw))
    except BaseExceptionGroup as failures:
        raise _first_cause(failures) from None


async def _awaited(aw: Awaitable[object]) -> None:
    await aw


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_cause(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


class CopyLedger:
    """What the copies into one destination registry did in this session, shared by them all.

    A failed copy of a manifest or blob leaves nothing behind: the next copy that needs it
    tries again.
    """

    def __init__(self) -> None:
        # (repository, digest) → whether the manifest was copied (False: it was there).
        self.manifests: Claims[tuple[str, Digest], bool] = Claims(failures="retry")
        self.blobs: Claims[tuple[str, Digest], None] = Claims(failures="retry")
        self._holders: dict[Digest, dict[str, tuple[Repository, Held[None]]]] = {}

    def receiving(
        self, digest: Digest, repository: Repository, held: Held[None]
    ) -> list[tuple[Repository, Held[None]]]:
        """Note that ``repository`` receives ``digest`` under ``held``; → the other
        repositories that hold or are receiving it, each with its hold, to mount from."""
        holders = self._holders.setdefault(digest, {})
        elsewhere = [holder for name, holder in holders.items() if name != repository.name]
        holders[repository.name] = (repository, held)
        return elsewhere


class Copier:
    """Copies manifests, with everything they reference, from ``src`` to ``dst``."""

    def __init__(
        self,
        src: Repository,
        dst: Repository,
        *,
        stats: CopyStats | None = None,
        ledger: CopyLedger | None = None,
        fallback_index: bool = True,
        transfers: asyncio.Semaphore | None = None,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
        transfer: bool = True,
    ) -> None:
        self.src = src
        self.dst = dst
        self.stats = stats if stats is not None else CopyStats()
        self.ledger = ledger if ledger is not None else CopyLedger()
        self.fallback_index = fallback_index
        self.buffer_limit = buffer_limit
        self.transfer = transfer  # False: blobs are counted, never read (a dry run)
        # Blobs moved at once (a run's copiers share one): each may hold buffer_limit bytes,
        # and without a bound every blob of every image in flight would wait, downloaded,
        # for the destination to take it.
        self._transfers = transfers or asyncio.Semaphore(DEFAULT_TRANSFERS)

    # -- manifests -------------------------------------------------------------------------

    async def copy(self, manifest: Manifest, tag: str | None = None) -> None:
        """Copy ``manifest`` and its content, then put it by ``tag`` (by digest without one).

        The destination is not asked whether it has the manifest: the caller just learned that
        the tag is missing or elsewhere, and blobs and children are each checked anyway.
        """
        async with self.ledger.manifests.hold((self.dst.name, manifest.digest)) as held:
            if held.owner:
                await self._push(manifest, tag)
                held.set(True)
                return
        # Landed earlier in this session: only the tag may be missing.
        self.stats.manifests_skipped += 1
        if tag is not None:
            await self.dst.put_manifest(manifest, tag, fallback_index=self.fallback_index)

    async def ensure(self, descriptor: Descriptor) -> bool:
        """Make the manifest ``descriptor`` names present at the destination; True if copied."""
        async with self.ledger.manifests.hold((self.dst.name, descriptor.digest)) as held:
            if not held.owner:
                self.stats.manifests_skipped += 1
                return False
            # A registry accepts a manifest only with its content, so a present one is complete.
            if await self.dst.resolve(str(descriptor.digest)) is not None:
                self.stats.manifests_skipped += 1
                held.set(False)
                return False
            await self._push(await self.src.get_manifest(str(descriptor.digest)), None)
            held.set(True)
            return True

    async def _push(self, manifest: Manifest, tag: str | None) -> None:
        try:
            await gather_all(
                [
                    *(self.copy_blob(blob) for blob in _unique(manifest.blobs())),
                    *(self.ensure(child) for child in _unique(manifest.manifests)),
                ]
            )
            await self.dst.put_manifest(manifest, tag, fallback_index=self.fallback_index)
        except Exception:
            self.stats.manifests_failed += 1
            raise
        self.stats.manifests_copied += 1

    # -- blobs -----------------------------------------------------------------------------

    async def copy_blob(self, blob: Descriptor) -> None:
        async with self.ledger.blobs.hold((self.dst.name, blob.digest)) as held:
            if held.owner:
                # Noted in the step that took the claim: two copies never wait for each other.
                elsewhere = self.ledger.receiving(blob.digest, self.dst, held)
                await self._land(blob, elsewhere)
                held.set(None)
                return
        self.stats.blobs_skipped += 1
        self.stats.bytes_skipped += blob.size

    async def _land(self, blob: Descriptor, elsewhere: list[tuple[Repository, Held[None]]]) -> None:
        for repository, holder in elsewhere:
            if await holder.succeeded():
                if await self._mount(blob.digest, repository):
                    self.stats.blobs_mounted += 1
                    self.stats.blobs_skipped += 1
                    self.stats.bytes_skipped += blob.size
                    return
                break  # one refusal says this registry does not mount; do not ask again
        if await self.dst.has_blob(blob.digest):
            self.stats.blobs_skipped += 1
            self.stats.bytes_skipped += blob.size
            return
        try:
            async with self._transfers:
                await self._transfer(blob)
        except Exception:
            self.stats.blobs_failed += 1
            self.stats.bytes_failed += blob.size
            raise
        self.stats.blobs_copied += 1
        self.stats.bytes_copied += blob.size

    async def _mount(self, digest: Digest, source: Repository) -> bool:
        try:
            return await self.dst.mount_blob(digest, source)
        except OCIError:
            return False  # only a shortcut: the transfer that follows tells the real story

    async def _transfer(self, blob: Descriptor) -> None:
        if not self.transfer:
            return
        chunks = self.src.blob_chunks(blob.digest, blob.size)
        if blob.size <= self.buffer_limit:
            # The comprehension ends only after the stream verified size and digest.
            data = b"".join([chunk async for chunk in chunks])
            await self.dst.push_blob(blob.digest, data, blob.size, verified=True)
            return
        stream = _read_ahead(chunks)
        try:
            await self.dst.push_blob(blob.digest, stream, blob.size)
        finally:
            await stream.aclose()


def _unique(descriptors: Iterable[Descriptor]) -> list[Descriptor]:
    return list({d.digest: d for d in descriptors}.values())


async def _read_ahead(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Keep downloading while the consumer uploads, so both links stay busy.

    A failure of the source (a digest mismatch at the end) reaches the consumer in order,
    after the chunks before it: the upload is then cancelled, never committed.
    """
    queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(_READ_AHEAD)

    async def pump() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
        except Exception as exc:
            await queue.put(exc)
            return
        await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def copy_manifest(
    src: Repository,
    dst: Repository,
    manifest: Manifest,
    tag: str | None = None,
    stats: CopyStats | None = None,
    parallel: int = 4,
) -> CopyStats:
    """Copy a manifest and everything it references, then tag it (when ``tag`` is given).

    A manifest the destination has is not copied again; only its tag is moved when needed.
    """
    stats = stats if stats is not None else CopyStats()
    existing = await dst.resolve(str(manifest.digest))
    if existing is None:
        transfers = asyncio.Semaphore(max(parallel, 1))
        await Copier(src, dst, stats=stats, transfers=transfers).copy(manifest, tag)
        return stats
    stats.manifests_skipped += 1
    if tag is not None:
        current = await dst.resolve(tag)
        if current is None or current.digest != manifest.digest:
            await dst.put_manifest(manifest, tag)
    return stats


async def copy_tag(
    src: Repository, dst: Repository, tag: str, stats: CopyStats | None = None
) -> CopyStats:
    manifest = await src.get_manifest(tag)
    return await copy_manifest(src, dst, manifest, tag, stats)
