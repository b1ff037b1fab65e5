"""One interface over a registry repository and an OCI image-layout directory.

Copying, inspecting and indexing are written once against :class:`Repository`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from catalog.oci.client import Referrers, RegistryClient
from catalog.oci.digest import Digest
from catalog.oci.manifest import Descriptor, Manifest


async def all_tags(repo: Repository, most: int) -> list[str] | None:
    """Every tag of ``repo`` as listed; None when it has more than ``most``."""
    found: list[str] = []
    async for tag in repo.tags():
        if len(found) == most:
            return None
        found.append(tag)
    return found


class Repository(Protocol):
    """Where manifests and blobs live, addressed by tag or digest."""

    @property
    def name(self) -> str: ...

    async def resolve(self, ref: str) -> Descriptor | None: ...

    async def get_manifest(self, ref: str) -> Manifest: ...

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, fallback_index: bool = True
    ) -> None: ...

    def tags(self) -> AsyncIterator[str]: ...

    async def has_blob(self, digest: Digest) -> bool: ...

    def blob_chunks(self, digest: Digest, size: int | None = None) -> AsyncIterator[bytes]: ...

    async def push_blob(
        self,
        digest: Digest,
        content: bytes | AsyncIterable[bytes],
        size: int | None = None,
        *,
        verified: bool = False,
    ) -> None: ...

    async def mount_blob(self, digest: Digest, source: Repository) -> bool:
        """Make ``digest`` present here without transferring it; True when it now is."""
        ...

    async def referrers(
        self, digest: Digest, artifact_type: str | None = None, fallback: bool = True
    ) -> Referrers: ...


class RemoteRepository:
    """A repository on a registry, through its :class:`RegistryClient`."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository

    @property
    def name(self) -> str:
        return f"{self.client.host}/{self.repository}"

    async def resolve(self, ref: str) -> Descriptor | None:
        return await self.client.head_manifest(self.repository, ref)

    async def get_manifest(self, ref: str) -> Manifest:
        return await self.client.get_manifest(self.repository, ref)

    async def get_manifest_unless(self, ref: str, digest: Digest) -> Manifest | None:
        """See :meth:`RegistryClient.get_manifest_unless`."""
        return await self.client.get_manifest_unless(self.repository, ref, digest)

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, fallback_index: bool = True
    ) -> None:
        await self.client.put_manifest(
            self.repository, manifest, tag, fallback_index=fallback_index
        )

    def tags(self) -> AsyncIterator[str]:
        return self.client.tags(self.repository)

    async def has_blob(self, digest: Digest) -> bool:
        return await self.client.head_blob(self.repository, digest) is not None

    def blob_chunks(self, digest: Digest, size: int | None = None) -> AsyncIterator[bytes]:
        return self.client.blob_chunks(self.repository, digest, size)

    async def push_blob(
        self,
        digest: Digest,
        content: bytes | AsyncIterable[bytes],
        size: int | None = None,
        *,
        verified: bool = False,
    ) -> None:
        await self.client.push_blob(self.repository, digest, content, size, verified=verified)

    async def mount_blob(self, digest: Digest, source: Repository) -> bool:
        """Cross-repository mount, possible only from a repository of the same registry."""
        if not isinstance(source, RemoteRepository) or source.client.host != self.client.host:
            return False
        return await self.client.mount_blob(self.repository, digest, source.repository)

    async def referrers(
        self, digest: Digest, artifact_type: str | None = None, fallback: bool = True
    ) -> Referrers:
        return await self.client.referrers(self.repository, digest, artifact_type, fallback)
