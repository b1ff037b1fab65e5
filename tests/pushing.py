"""Push images built by the harness through our own client (children, blobs, then the manifest)."""

from __future__ import annotations

import asyncio

from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from catalog.oci.manifest import Manifest, parse_manifest
from tests.harness.images import BuiltManifest


def parsed(built: BuiltManifest) -> Manifest:
    return parse_manifest(built.raw, built.media_type)


async def push_built(
    client: RegistryClient, repository: str, built: BuiltManifest, tag: str | None = None
) -> Manifest:
    for child in built.children:
        await push_built(client, repository, child)
    await asyncio.gather(
        *(
            client.push_blob(repository, Digest.parse(b.digest), b.data)
            for b in {b.digest: b for b in built.blobs}.values()
        )
    )
    manifest = parsed(built)
    await client.put_manifest(repository, manifest, tag)
    return manifest
