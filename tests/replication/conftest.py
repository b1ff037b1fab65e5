"""Registry pairs for replication tests, and a byte-for-byte comparison of source and mirror."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog.oci.client import RegistryClient, RegistryOptions
from catalog.oci.digest import Digest
from catalog.oci.manifest import Manifest
from replication.engine import replicate
from replication.report import RunReport
from replication.rules import Rewrite, Rule
from tests.conftest import FAST_RETRY
from tests.harness.faultproxy import FaultProxy, run_proxy
from tests.harness.images import BuiltManifest, build_artifact, build_multiplatform
from tests.harness.registry import RunningRegistry, run_registry
from tests.pushing import push_built
from tests.replication.api_support import Registries, Served, serving

OPTIONS = RegistryOptions(retry=FAST_RETRY)


@dataclass
class Pair:
    """Two registries, each behind a proxy that counts requests and injects faults."""

    source: RunningRegistry
    destination: RunningRegistry
    source_proxy: FaultProxy
    destination_proxy: FaultProxy

    def rule(self, **fields: object) -> Rule:
        rule = Rule(self.source_proxy.host, self.destination_proxy.host)
        return rule._replace(**fields)  # type: ignore[arg-type]

    async def run(
        self,
        prefix: str = "",
        *,
        options: RegistryOptions = OPTIONS,
        parallel: int = 8,
        **fields: object,
    ) -> RunReport:
        rule = self.rule(rewrite=Rewrite(prefix=prefix), **fields)
        return await replicate(
            rule, source_options=options, destination_options=options, parallel=parallel
        )


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with (
        run_registry(tmp_path) as source,
        run_registry(tmp_path) as destination,
        run_proxy(source.url) as source_proxy,
        run_proxy(destination.url) as destination_proxy,
    ):
        yield Pair(source, destination, source_proxy, destination_proxy)


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Registries]:
    with run_registry(tmp_path) as source, run_registry(tmp_path) as destination:
        yield Registries(source, destination)


@pytest.fixture
async def served(tmp_path: Path, registries: Registries) -> AsyncIterator[Served]:
    async with serving(tmp_path, registries) as served:
        yield served


@dataclass
class Extras:
    index: str  # a multi-platform index
    child_sbom: str  # SBOM referrer of its first platform image
    sbom_signature: str  # a signature artifact whose subject is that SBOM


async def push_extras(host: str, rng: random.Random) -> Extras:
    """What the shared corpus lacks: referrers on an index child, and a referrer of a referrer."""
    index = build_multiplatform(rng)
    sbom = build_artifact(
        index.children[0], "application/spdx+json", b'{"spdxVersion":"SPDX-2.3"}', "text/spdx+json"
    )
    signature = build_artifact(
        sbom, "application/vnd.cncf.notary.signature", b"not a real jws", "application/jose+json"
    )
    async with RegistryClient(host) as client:
        await push_built(client, "shop/multi", index, "2.0")
        await push_built(client, "shop/multi", sbom)
        await push_built(client, "shop/multi", signature)
    return Extras(index.digest, sbom.digest, signature.digest)


async def push_to(host: str, repository: str, built: BuiltManifest, tag: str | None = None) -> None:
    async with RegistryClient(host) as client:
        await push_built(client, repository, built, tag)


async def assert_mirrored(source: str, destination: str, prefix: str = "") -> int:
    """Every tag of every source repository at the destination, with the same bytes, and every
    manifest and blob under it present; returns how many manifests were compared."""
    compared = 0
    async with RegistryClient(source) as src, RegistryClient(destination) as dst:
        async for repository in src.catalog():
            target = f"{prefix}/{repository}" if prefix else repository
            tags = sorted([t async for t in src.tags(repository)])
            assert sorted([t async for t in dst.tags(target)]) == tags, repository
            seen: set[Digest] = set()
            for tag in tags:
                ours = await src.get_manifest(repository, tag)
                theirs = await dst.get_manifest(target, tag)
                assert theirs.raw == ours.raw, f"{repository}:{tag}"
                compared += await _same_graph(src, dst, repository, target, ours, seen)
    return compared


async def _same_graph(
    src: RegistryClient,
    dst: RegistryClient,
    repository: str,
    target: str,
    manifest: Manifest,
    seen: set[Digest],
) -> int:
    if manifest.digest in seen:
        return 0
    seen.add(manifest.digest)
    for blob in manifest.blobs():
        assert await dst.head_blob(target, blob.digest) == blob.size, f"{target}@{blob.digest}"
    compared = 1
    for child in manifest.manifests:
        ours = await src.get_manifest(repository, str(child.digest))
        theirs = await dst.get_manifest(target, str(child.digest))
        assert theirs.raw == ours.raw
        compared += await _same_graph(src, dst, repository, target, ours, seen)
    return compared


async def subject(host: str, repository: str, digest: str) -> BuiltManifest:
    """A manifest already in a registry, as the subject of artifacts built here."""
    async with RegistryClient(host) as client:
        found = await client.get_manifest(repository, digest)
    return BuiltManifest(found.media_type, found.raw, digest, found.size, [], [], None)


async def digest_of(host: str, repository: str, ref: str) -> str | None:
    async with RegistryClient(host) as client:
        found = await client.head_manifest(repository, ref)
    return str(found.digest) if found is not None else None
