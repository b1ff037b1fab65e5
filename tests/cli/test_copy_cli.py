"""``xregistry copy`` carries attachments as replication does: attachments of attachments too."""

from __future__ import annotations

import json
import random
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from tests.cli.test_catalog_cli import ok, run
from tests.harness.images import build_artifact, build_image
from tests.harness.registry import RunningRegistry, run_registry
from tests.pushing import push_built
from tests.signing import push_signature, signature_tag

BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


async def test_copy_follows_attachments_of_attachments(
    fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    """An image with an SBOM referrer, the SBOM with a referrer (a bundle) and a cosign
    signature of its own: all three arrive, digests unchanged, and a second copy sends none."""
    image = build_image(rng, layers=1, layer_size=10_000)
    sbom = build_artifact(
        image, "application/spdx+json", b'{"spdxVersion": "SPDX-2.3"}', "text/spdx"
    )
    bundle = build_artifact(sbom, BUNDLE, b'{"mediaType": "bundle"}', BUNDLE)
    async with RegistryClient(fresh_registry.host) as src:
        await push_built(src, "shop/api", image, "1.0")
        await push_built(src, "shop/api", sbom)
        await push_built(src, "shop/api", bundle)
        signature = await push_signature(
            src, "shop/api", sbom.digest, ec.generate_private_key(ec.SECP256R1())
        )

    with run_registry(tmp_path) as destination:
        args = ["copy", f"{fresh_registry.host}/shop/api:1.0", f"{destination.host}/m/api:1.0"]
        first = json.loads(ok(run(*args, "-o", "json")))
        again = json.loads(ok(run(*args, "-o", "json")))

        async with RegistryClient(destination.host) as dst:
            assert (await dst.get_manifest("m/api", "1.0")).digest == Digest.parse(image.digest)
            for attached in (sbom, bundle, signature):
                copied = await dst.get_manifest("m/api", attached.digest)
                assert str(copied.digest) == attached.digest
            tagged = await dst.head_manifest("m/api", signature_tag(sbom.digest))
            assert tagged is not None
            assert str(tagged.digest) == signature.digest
            on_sbom = await dst.referrers("m/api", Digest.parse(sbom.digest))
            assert [str(d.digest) for d in on_sbom.descriptors] == [bundle.digest]

    assert (first["referrers"], first["referrersCopied"]) == (3, 3)
    assert first["manifestsCopied"] == 4  # the image and its three attachments
    assert (again["referrers"], again["referrersCopied"], again["manifestsCopied"]) == (3, 0, 0)
