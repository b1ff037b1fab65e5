"""A dry run's destination: read as it is, written to nowhere.

The run goes through the same steps as a real one (tags, conflicts, manifests, blobs, every
referrer scheme), so it reports exactly what a real run would copy now. Every write the copy
would make is remembered instead, so later steps see it as done (a blob shared by two images is
counted once, as a real run would send it once, or mount it); no blob is read at the source (the
copier is told not to transfer) and nothing is sent to the destination. The one guess: a
registry is assumed to accept the cross-repository mounts a real run would ask for.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from catalog.oci.client import Referrers
from catalog.oci.digest import Digest, is_digest
from catalog.oci.errors import LayoutError, ManifestUnknown
from catalog.oci.manifest import Descriptor, Manifest
from catalog.oci.repository import RemoteRepository, Repository
from replication.stores import Store


class DryRunStore:
    """Wraps a destination :class:`Store`: one remembering repository per name."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self._repositories: dict[str, DryRunRepository] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def buffer_limit(self) -> int:
        return self.inner.buffer_limit

    def repositories(self) -> AsyncIterator[str]:
        return self.inner.repositories()

    def repository(self, name: str) -> Repository:
        if name not in self._repositories:
            try:
                real: Repository = self.inner.repository(name)
            except LayoutError:
                real = _Absent(f"{self.inner.name}/{name}")  # a layout a real run would create
            self._repositories[name] = DryRunRepository(real)
        return self._repositories[name]

    def tags(self, name: str) -> AsyncIterator[str]:
        return self.repository(name).tags()


class DryRunRepository:
    """Reads go to the real repository, overlaid with the writes a real run would have made."""

    def __init__(self, inner: Repository) -> None:
        self.inner = inner
        self._manifests: dict[Digest, Manifest] = {}
        self._tags: dict[str, Digest] = {}
        self._blobs: set[Digest] = set()

    @property
    def name(self) -> str:
        return self.inner.name

    def _written(self, ref: str) -> Manifest | None:
        digest = Digest.parse(ref) if is_digest(ref) else self._tags.get(ref)
        return self._manifests.get(digest) if digest is not None else None

    async def resolve(self, ref: str) -> Descriptor | None:
        written = self._written(ref)
        return written.descriptor() if written is not None else await self.inner.resolve(ref)

    async def get_manifest(self, ref: str) -> Manifest:
        written = self._written(ref)
        return written if written is not None else await self.inner.get_manifest(ref)

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, fallback_index: bool = True
    ) -> None:
        self._manifests[manifest.digest] = manifest
        if tag is not None:
            self._tags[tag] = manifest.digest

    async def tags(self) -> AsyncIterator[str]:
        seen = set()
        async for tag in self.inner.tags():
            seen.add(tag)
            yield tag
        for tag in sorted(set(self._tags) - seen):
            yield tag

    async def has_blob(self, digest: Digest) -> bool:
        return digest in self._blobs or await self.inner.has_blob(digest)

    def blob_chunks(self, digest: Digest, size: int | None = None) -> AsyncIterator[bytes]:
        return self.inner.blob_chunks(digest, size)

    async def push_blob(
        self,
        digest: Digest,
        content: bytes | AsyncIterable[bytes],
        size: int | None = None,
        *,
        verified: bool = False,
    ) -> None:
        self._blobs.add(digest)

    async def mount_blob(self, digest: Digest, source: Repository) -> bool:
        """Whether a real run's mount would succeed, found without making one: a registry
        mounts from its own repositories (assumed to accept, as Distribution does); a layout
        "mounts" only what it has, which is a read."""
        if isinstance(self.inner, RemoteRepository):
            origin = source.inner if isinstance(source, DryRunRepository) else source
            would = (
                isinstance(origin, RemoteRepository)
                and origin.client.host == self.inner.client.host
            )
        else:
            would = await self.has_blob(digest)
        if would:
            self._blobs.add(digest)
        return would

    async def referrers(
        self, digest: Digest, artifact_type: str | None = None, fallback: bool = True
    ) -> Referrers:
        return await self.inner.referrers(digest, artifact_type, fallback)


class _Absent:
    """A layout that does not exist yet: empty, with index.json as its referrers listing."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def resolve(self, ref: str) -> Descriptor | None:
        return None

    async def get_manifest(self, ref: str) -> Manifest:
        raise ManifestUnknown(f"{self._name}: no manifest {ref}")

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, fallback_index: bool = True
    ) -> None:
        raise AssertionError("a dry run writes nothing")

    async def tags(self) -> AsyncIterator[str]:
        none: tuple[str, ...] = ()
        for tag in none:
            yield tag

    async def has_blob(self, digest: Digest) -> bool:
        return False

    def blob_chunks(self, digest: Digest, size: int | None = None) -> AsyncIterator[bytes]:
        raise LayoutError(f"{self._name}: no blob {digest}")

    async def push_blob(
        self,
        digest: Digest,
        content: bytes | AsyncIterable[bytes],
        size: int | None = None,
        *,
        verified: bool = False,
    ) -> None:
        raise AssertionError("a dry run writes nothing")

    async def mount_blob(self, digest: Digest, source: Repository) -> bool:
        return False

    async def referrers(
        self, digest: Digest, artifact_type: str | None = None, fallback: bool = True
    ) -> Referrers:
        return Referrers([], "layout-index")
