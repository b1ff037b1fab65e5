"""Digest-preserving copies between repositories (registry or layout, either side).

Order keeps every destination consistent: blobs before the manifest that names them, children
before the index. Manifests go across as their exact bytes; blobs stream through digest checks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from catalog.oci.manifest import Descriptor, Manifest
from catalog.oci.repository import Repository


@dataclass(slots=True)
class CopyStats:
    manifests_copied: int = 0
    manifests_skipped: int = 0
    blobs_copied: int = 0
    blobs_skipped: int = 0
    bytes_copied: int = 0


async def copy_blob(src: Repository, dst: Repository, blob: Descriptor, stats: CopyStats) -> None:
    if await dst.has_blob(blob.digest):
        stats.blobs_skipped += 1
        return
    await dst.push_blob(blob.digest, src.blob_chunks(blob.digest, blob.size), blob.size)
    stats.blobs_copied += 1
    stats.bytes_copied += blob.size


async def copy_manifest(
    src: Repository,
    dst: Repository,
    manifest: Manifest,
    tag: str | None = None,
    stats: CopyStats | None = None,
    parallel: int = 4,
) -> CopyStats:
    """Copy a manifest and everything it references, then tag it (when ``tag`` is given)."""
    stats = stats if stats is not None else CopyStats()
    existing = await dst.resolve(str(manifest.digest))
    if existing is None:
        limit = asyncio.Semaphore(parallel)

        async def bounded_blob(blob: Descriptor) -> None:
            async with limit:
                await copy_blob(src, dst, blob, stats)

        async def child(descriptor: Descriptor) -> None:
            async with limit:
                child_manifest = await src.get_manifest(str(descriptor.digest))
            await copy_manifest(src, dst, child_manifest, None, stats, parallel)

        await asyncio.gather(*(bounded_blob(b) for b in manifest.blobs()))
        await asyncio.gather(*(child(d) for d in manifest.manifests))
        await dst.put_manifest(manifest, None if tag is None else tag)
        stats.manifests_copied += 1
    else:
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
