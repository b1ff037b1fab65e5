"""A registry filled with what the catalog must understand, as real tools lay it out."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.oci.client import RegistryClient
from catalog.oci.copy import copy_manifest, copy_tag
from catalog.oci.layout import LayoutRepository
from catalog.oci.repository import RemoteRepository
from catalog.store.grouped import GroupTransaction
from tests.harness.faultproxy import FaultProxy, run_proxy
from tests.harness.images import build_artifact, build_image
from tests.harness.registry import RunningRegistry, run_registry
from tests.pushing import push_built
from tests.signing import buildkit_attestation, index_with_attestation, push_signature

SLSA_BUILDER = (
    "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
    "generator_container_slsa3.yml@refs/tags/v1.10.0"
)
SLSA_SOURCE = "https://github.com/slsa-framework/example-package"
SPDX_PURL = "pkg:deb/debian/package-2@2.0.1"
CDX_PURL = "pkg:rpm/centos/openssl-libs@1.0.2k-16.el7?arch=x86_64&epoch=1&distro=centos-7.6.1810"


@pytest.fixture
def one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crawl's repositories recorded in one group, committed at its end: a slow machine
    would otherwise commit between two of them (a group is due after a second)."""
    monkeypatch.setattr(
        GroupTransaction.__init__, "__kwdefaults__", {"units": 64, "seconds": 3600.0}
    )


@dataclass
class Corpus:
    slsa_index: str = ""
    images: dict[str, str] = field(default_factory=dict)  # "repo:tag" → digest
    signatures: dict[str, str] = field(default_factory=dict)  # image digest → .sig digest
    sboms: dict[str, str] = field(default_factory=dict)  # image digest → SBOM referrer digest
    buildkit_index: str = ""
    buildkit_image: str = ""


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[RunningRegistry, FaultProxy]]:
    """A fresh registry and a counting proxy in front of it (the catalog talks to the proxy)."""
    with run_registry(tmp_path) as reg, run_proxy(reg.url) as proxy:
        yield reg, proxy


async def populate(host: str, fixtures: Path, rng: random.Random) -> Corpus:
    corpus = Corpus()
    key = ec.generate_private_key(ec.SECP256R1())
    async with RegistryClient(host) as client:
        layout = LayoutRepository(
            fixtures / "slsa-container" / "v1.10.0" / "container_workflow_dispatch"
        )
        remote = RemoteRepository(client, "slsa/app")
        index = await layout.get_manifest(layout.default_ref())
        await copy_manifest(layout, remote, index, "v1")
        async for tag in layout.tags():
            await copy_tag(layout, remote, tag)
        corpus.slsa_index = str(index.digest)

        sboms = [
            ("application/spdx+json", fixtures / "sbom" / "syft-image.spdx-2.3.json"),
            ("application/vnd.cyclonedx+json", fixtures / "sbom" / "trivy-centos-7.cdx-1.5.json"),
        ]
        for n, tag in enumerate(["1.0", "1.1", "1.2"]):
            image = build_image(rng, layers=1, layer_size=2048)
            await push_built(client, "shop/api", image, tag)
            corpus.images[f"shop/api:{tag}"] = image.digest
            sig = await push_signature(client, "shop/api", image.digest, key)
            corpus.signatures[image.digest] = sig.digest
            if n < len(sboms):
                media_type, path = sboms[n]
                sbom = build_artifact(image, media_type, path.read_bytes(), media_type)
                await push_built(client, "shop/api", sbom)  # fallback index kept by our client
                corpus.sboms[image.digest] = sbom.digest

        image = build_image(rng, layers=1, layer_size=2048)
        statement = (
            fixtures
            / "slsa-container/v1.10.0/container_workflow_dispatch/blobs/sha256"
            / "c1944d4717b644d2c7e1eccab4cc6e963cefbe288d75b7f7c3dfee4f4a894406"
        ).read_bytes()
        attestation = buildkit_attestation(image, statement, "https://slsa.dev/provenance/v0.2")
        buildkit = index_with_attestation(image, attestation)
        await push_built(client, "shop/web", buildkit, "1.0")
        corpus.buildkit_index, corpus.buildkit_image = buildkit.digest, image.digest
    return corpus
