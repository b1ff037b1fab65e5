"""What a rule selects, on real registries: tag filters, renames by pattern, referrer kinds,
conflicts, mounts, and a destination fallback index that is merged, never clobbered."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from replication.engine import replicate
from replication.rules import ConflictPolicy, RepositoryFilter, Rewrite, TagFilter
from tests.harness.images import build_artifact, build_image, random_layer
from tests.index.conftest import Corpus, populate
from tests.replication.conftest import OPTIONS, Pair, assert_mirrored, digest_of, push_to
from tests.signing import signature_tag

TAGS = ["1.0.0", "1.2.0", "1.10.0", "2.0.0", "2.1.0-rc.1", "latest", "dev-abc"]


async def tags_at(host: str, repository: str) -> list[str]:
    async with RegistryClient(host) as client:
        return sorted([t async for t in client.tags(repository)])


@pytest.mark.parametrize(
    ("name", "tag_filter", "expected"),
    [
        ("glob", TagFilter(globs=("1.*", "latest")), ["1.0.0", "1.10.0", "1.2.0", "latest"]),
        ("regex", TagFilter(regex=r"\d+\.\d+\.\d+"), ["1.0.0", "1.10.0", "1.2.0", "2.0.0"]),
        ("semver", TagFilter(semver="^1.2"), ["1.10.0", "1.2.0"]),
        ("newest", TagFilter(newest=2), ["2.0.0", "2.1.0-rc.1"]),
        ("created", TagFilter(newest=1, newest_by="created"), ["dev-abc"]),
        ("all", TagFilter(globs=("2.*",), semver=">=2"), ["2.0.0"]),
    ],
)
async def test_tag_filters(
    pair: Pair, rng: random.Random, name: str, tag_filter: TagFilter, expected: list[str]
) -> None:
    for n, tag in enumerate(TAGS):
        # Creation times follow the list: dev-abc, last, is the newest image.
        created = {"org.opencontainers.image.created": f"2025-01-{n + 1:02d}T00:00:00Z"}
        image = build_image(rng, layers=1, layer_size=512, annotations=created)
        await push_to(pair.source.host, "app", image, tag)

    report = await pair.run(name, tags=tag_filter)

    assert report.errors == []
    assert report.images.copied == len(expected)
    assert await tags_at(pair.destination.host, f"{name}/app") == expected


async def test_rename_by_pattern(pair: Pair, rng: random.Random) -> None:
    pushed = {}
    for repository in ("acme/web/api", "acme/db/pg", "acme/solo", "acme/web/a-b", "acme/web-a/b"):
        image = build_image(rng, layers=1, layer_size=1024)
        await push_to(pair.source.host, repository, image, "1.0")
        pushed[repository] = image.digest
    rule = pair.rule(
        repositories=RepositoryFilter(("acme/**",)),
        rewrite=Rewrite(pattern=r"acme/(?P<team>[^/]+)/(.*)", replacement=r"mirror/\g<team>-\2"),
    )

    report = await replicate(rule, source_options=OPTIONS, destination_options=OPTIONS)

    assert report.images.copied == 2
    assert (
        await digest_of(pair.destination.host, "mirror/web-api", "1.0") == (pushed["acme/web/api"])
    )
    assert await digest_of(pair.destination.host, "mirror/db-pg", "1.0") == pushed["acme/db/pg"]
    # Not matched by the pattern, or renamed onto one destination: reported, never copied.
    reasons = {e.repository: e.reason for e in report.errors}
    assert sorted(reasons) == ["acme/solo", "acme/web-a/b", "acme/web/a-b"]
    assert "does not match the rename pattern" in reasons["acme/solo"]
    assert "rewrites to mirror/web-a-b, as acme/web/a-b does" in reasons["acme/web-a/b"]
    async with RegistryClient(pair.destination.host) as dst:
        assert sorted([r async for r in dst.catalog()]) == ["mirror/db-pg", "mirror/web-api"]


async def test_referrer_kinds(pair: Pair, fixtures_dir: Path, rng: random.Random) -> None:
    corpus: Corpus = await populate(pair.source.host, fixtures_dir, rng)
    only_signatures = await pair.run(
        "sig", referrers=frozenset({"signature"}), repositories=RepositoryFilter(("shop/*",))
    )
    nothing = await pair.run("none", referrers=frozenset(), repositories=RepositoryFilter(("**",)))

    assert only_signatures.errors == nothing.errors == []
    api = await tags_at(pair.destination.host, "sig/shop/api")
    signatures = sorted(signature_tag(d) for d in corpus.signatures)
    assert api == sorted(["1.0", "1.1", "1.2", *signatures])  # no fallback index: no SBOMs
    assert only_signatures.counts.referrers_copied == 3
    assert await tags_at(pair.destination.host, "none/slsa/app") == ["latest", "v1"]
    counts = nothing.counts
    assert (counts.referrers_copied, counts.referrers_skipped, counts.referrers_failed) == (0, 0, 0)
    # In-index attestations are part of their index's bytes: they always come.
    assert await digest_of(pair.destination.host, "none/shop/web", "1.0") == corpus.buildkit_index


async def test_conflicting_destination_tag_is_reported_or_overwritten(
    pair: Pair, rng: random.Random
) -> None:
    ours, theirs = build_image(rng, layers=1, layer_size=2048), build_image(rng, layers=1)
    await push_to(pair.source.host, "app", ours, "1.0")
    await push_to(pair.source.host, "app", build_image(rng, layers=1), "1.1")
    await push_to(pair.destination.host, "app", theirs, "1.0")

    reported = await pair.run(conflict=ConflictPolicy.REPORT)

    assert [(e.tag, e.outcome) for e in reported.errors] == [("1.0", "conflict")]
    assert ours.digest in reported.errors[0].reason
    assert theirs.digest in reported.errors[0].reason
    assert (reported.images.copied, reported.images.failed) == (1, 1)
    assert await digest_of(pair.destination.host, "app", "1.0") == theirs.digest
    async with RegistryClient(pair.destination.host) as dst:  # nothing of ours went across
        assert await dst.head_manifest("app", ours.digest) is None

    overwritten = await pair.run(conflict=ConflictPolicy.OVERWRITE)

    assert overwritten.errors == []
    assert (overwritten.images.copied, overwritten.images.skipped) == (1, 1)
    assert await digest_of(pair.destination.host, "app", "1.0") == ours.digest


async def test_shared_blobs_are_mounted_across_destination_repositories(
    pair: Pair, rng: random.Random
) -> None:
    base = random_layer(rng, 300_000)
    for repository in ("team/a", "team/b", "team/c"):
        await push_to(pair.source.host, repository, build_image(rng, layers=1, base=base), "1")

    report = await pair.run(parallel=3)

    assert report.errors == []
    assert report.counts.blobs_mounted == 2
    assert pair.source_proxy.count("GET", f"/blobs/{base.digest}$") == 1
    mounts = [e for e in pair.destination_proxy.events if "mount=" in e.query]
    assert [e.status for e in mounts] == [201, 201]
    await assert_mirrored(pair.source.host, pair.destination.host)


async def test_destination_fallback_index_is_merged_not_clobbered(
    pair: Pair, rng: random.Random
) -> None:
    image = build_image(rng, layers=1, layer_size=2048)
    sbom = build_artifact(image, "application/spdx+json", b"{}", "text/spdx+json")
    await push_to(pair.source.host, "app", image, "1.0")
    await push_to(pair.source.host, "app", sbom)
    # The destination has the image already, with a referrer of its own (a local signature).
    await push_to(pair.destination.host, "app", image, "1.0")
    local = build_artifact(
        image, "application/vnd.cncf.notary.signature", b"local", "application/jose+json"
    )
    await push_to(pair.destination.host, "app", local)

    report = await pair.run()

    assert report.errors == []
    assert report.counts.referrers_copied == 1
    async with RegistryClient(pair.destination.host) as dst:
        listed = await dst.referrers("app", Digest.parse(image.digest))
    assert [str(d.digest) for d in listed.descriptors] == [local.digest, sbom.digest]
    assert (await pair.run()).counts.referrers_skipped == 1  # and stays merged
