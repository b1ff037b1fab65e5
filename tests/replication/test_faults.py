"""Bad sources and busy destinations: corrupted blobs fail their image and push nothing of it;
429/503 bursts are waited out."""

from __future__ import annotations

import random
from pathlib import Path

from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from tests.harness.faultproxy import registry_error
from tests.harness.images import build_image
from tests.index.conftest import populate
from tests.replication.conftest import OPTIONS, Pair, assert_mirrored, digest_of, push_to

CHUNKED = OPTIONS._replace(chunk_size=256 * 1024)  # 1 MiB layers upload in four PATCHes


async def test_corrupted_source_blob_fails_its_image_and_pushes_nothing_of_it(
    pair: Pair, rng: random.Random
) -> None:
    small = build_image(rng, layers=1, layer_size=4096)
    large = build_image(rng, layers=2, layer_size=1024 * 1024)
    fine = build_image(rng, layers=1, layer_size=4096)
    for tag, image in (("small", small), ("large", large), ("fine", fine)):
        await push_to(pair.source.host, "app", image, tag)
    bad_small, bad_large = small.layers[0].digest, large.layers[1].digest
    for digest in (bad_small, bad_large):
        pair.source_proxy.corrupt(3, match=f"/blobs/{digest}$", method="GET")

    report = await pair.run(options=CHUNKED)

    assert sorted(e.tag for e in report.errors) == ["large", "small"]
    assert all("digest mismatch" in e.reason for e in report.errors), report.errors
    assert (report.images.copied, report.images.failed) == (1, 2)
    assert report.counts.blobs_failed == 2
    async with RegistryClient(pair.destination.host) as dst:
        for digest in (bad_small, bad_large):
            assert await dst.head_blob("app", Digest.parse(digest)) is None
        for image in (small, large):
            assert await dst.head_manifest("app", image.digest) is None
        assert sorted([t async for t in dst.tags("app")]) == ["fine"]
    # The large layer streamed into an upload session that was cancelled, never committed.
    assert pair.destination_proxy.count("PATCH", "/blobs/uploads/") >= 1
    assert pair.destination_proxy.count("DELETE", "/blobs/uploads/") >= 1

    # Once the source serves good bytes, the next run completes what failed, and only that.
    pair.source_proxy.clear()
    again = await pair.run(options=CHUNKED)
    assert again.errors == []
    assert (again.images.copied, again.images.skipped) == (2, 1)
    await assert_mirrored(pair.source.host, pair.destination.host)


async def test_429_and_503_bursts_at_the_destination_are_survived(
    pair: Pair, fixtures_dir: Path, rng: random.Random
) -> None:
    await populate(pair.source.host, fixtures_dir, rng)
    await push_to(pair.source.host, "big", build_image(rng, layers=2, layer_size=700_000), "1")
    proxy = pair.destination_proxy
    slow_down = registry_error("TOOMANYREQUESTS", "slow down")
    proxy.fail(3, 429, headers={"Retry-After": "0"}, body=slow_down, match="/manifests/")
    proxy.fail(3, 503, match="/blobs/uploads/$", method="POST")
    proxy.fail(2, 503, method="PATCH")
    proxy.fail(3, 429, body=slow_down, match="/blobs/", method="HEAD")
    proxy.fail(2, 502, match="/blobs/uploads/.+", method="PUT")

    report = await pair.run(options=CHUNKED)

    assert report.errors == []
    assert proxy.pending() == 0
    assert sum(1 for e in proxy.events if e.status in (429, 502, 503)) == 13
    await assert_mirrored(pair.source.host, pair.destination.host)
    assert await digest_of(pair.destination.host, "big", "1") is not None
