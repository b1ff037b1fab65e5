"""A mirror is byte for byte: every manifest, referrer and fallback index keeps its digest."""

from __future__ import annotations

import random
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from catalog.oci.client import RegistryClient
from replication.engine import replicate
from replication.referrers import MAX_DEPTH
from tests.harness.images import build_artifact, build_image, referrers_tag
from tests.index.conftest import Corpus, populate
from tests.replication.conftest import (
    OPTIONS,
    Pair,
    assert_mirrored,
    digest_of,
    push_extras,
    push_to,
    subject,
)
from tests.signing import push_signature, signature_tag

SLSA = Path("slsa-container") / "v1.10.0"
WRITES = r"^/v2/.+/(manifests|blobs)/"


async def test_mirror_is_byte_identical_by_every_scheme(
    pair: Pair, fixtures_dir: Path, rng: random.Random
) -> None:
    corpus: Corpus = await populate(pair.source.host, fixtures_dir, rng)
    extras = await push_extras(pair.source.host, rng)

    report = await pair.run("mirror")

    assert report.errors == []
    # slsa/app v1+latest, shop/api 1.0-1.2, shop/web 1.0, shop/multi 2.0
    assert (report.images_total, report.images.copied) == (7, 7)
    # 3 cosign .sig, 2 SBOMs by fallback index, the fixture's .att, the child's SBOM and the
    # signature on that SBOM
    assert report.counts.referrers_copied == 8
    assert await assert_mirrored(pair.source.host, pair.destination.host, "mirror") >= 20
    dst = pair.destination.host

    # The slsa-container fixture: the index cosign signed, and its provenance .att by tag.
    expected = (fixtures_dir / SLSA / "container_workflow_dispatch.digest").read_text().strip()
    assert await digest_of(dst, "mirror/slsa/app", "v1") == expected == corpus.slsa_index
    att = f"{referrers_tag(corpus.slsa_index)}.att"
    assert await digest_of(dst, "mirror/slsa/app", att) == await digest_of(
        pair.source.host, "slsa/app", att
    )
    # Fallback indexes: the source's bytes, not a re-serialisation.
    for image, sbom in corpus.sboms.items():
        tag = referrers_tag(image)
        assert await digest_of(dst, "mirror/shop/api", tag) == await digest_of(
            pair.source.host, "shop/api", tag
        )
        assert await digest_of(dst, "mirror/shop/api", sbom) == sbom
    for image, signature in corpus.signatures.items():
        assert await digest_of(dst, "mirror/shop/api", f"{referrers_tag(image)}.sig") == signature
    # BuildKit's in-index attestation came with its index; referrers of a child and of a referrer.
    assert await digest_of(dst, "mirror/shop/web", "1.0") == corpus.buildkit_index
    for digest in (extras.child_sbom, extras.sbom_signature):
        assert await digest_of(dst, "mirror/shop/multi", digest) == digest
    assert await digest_of(dst, "mirror/shop/multi", referrers_tag(extras.child_sbom)) is not None


async def test_second_run_of_an_unchanged_source_copies_nothing(
    pair: Pair, fixtures_dir: Path, rng: random.Random
) -> None:
    await populate(pair.source.host, fixtures_dir, rng)
    await push_extras(pair.source.host, rng)
    first = await pair.run()
    assert first.errors == []
    pair.source_proxy.reset_counters()
    pair.destination_proxy.reset_counters()

    again = await pair.run()

    assert again.errors == []
    assert (again.images.copied, again.images.skipped) == (0, 7)
    assert (
        again.counts.manifests_copied,
        again.counts.blobs_copied,
        again.counts.bytes_copied,
    ) == (0, 0, 0)
    assert (again.counts.referrers_copied, again.counts.referrers_skipped) == (0, 8)
    writes = sum(
        pair.destination_proxy.count(method, WRITES) for method in ("PUT", "POST", "PATCH")
    )
    assert writes == 0
    assert pair.source_proxy.count("GET", "/blobs/") == 0
    # A handful of look-ups per image, whatever its size: tag, referrers, cosign tags.
    looked_up = len(pair.source_proxy.events) + len(pair.destination_proxy.events)
    assert looked_up <= 6 * again.images_total, looked_up


async def test_an_unchanged_image_costs_a_get_at_the_source_and_a_head_at_the_destination(
    pair: Pair, rng: random.Random
) -> None:
    """The floor of a no-change re-sync: each source tag read once, each destination tag asked
    for once (its digest is the answer), nothing else at the destination; beside that only the
    listings and one probe for the referrers API."""
    for repository, tag in (("shop/api", "1.0"), ("shop/api", "1.1"), ("shop/web", "2.0")):
        await push_to(pair.source.host, repository, build_image(rng, layers=1), tag)
    assert (await pair.run()).errors == []
    pair.source_proxy.reset_counters()
    pair.destination_proxy.reset_counters()

    again = await pair.run()

    assert (again.images.copied, again.images.skipped) == (0, 3)
    at_destination = sorted(pair.destination_proxy.requests)
    assert at_destination == [
        ("HEAD", "/v2/shop/api/manifests/1.0"),
        ("HEAD", "/v2/shop/api/manifests/1.1"),
        ("HEAD", "/v2/shop/web/manifests/2.0"),
    ]
    assert pair.source_proxy.count("GET", "/manifests/") == 3
    assert pair.source_proxy.count("GET", "/referrers/") == 1  # the registry has no API: once
    assert pair.source_proxy.count("GET", "/tags/list") == 2
    assert pair.source_proxy.count("GET", "^/v2/_catalog") == 1
    assert len(pair.source_proxy.events) == 3 + 1 + 2 + 1


async def test_referrers_added_after_a_run_arrive_with_the_next(
    pair: Pair, fixtures_dir: Path, rng: random.Random
) -> None:
    corpus = await populate(pair.source.host, fixtures_dir, rng)
    assert (await pair.run()).errors == []
    with_sbom, without_sbom = corpus.images["shop/api:1.0"], corpus.images["shop/api:1.2"]
    assert with_sbom in corpus.sboms
    assert without_sbom not in corpus.sboms
    late = []
    for digest in (with_sbom, without_sbom):
        image = await subject(pair.source.host, "shop/api", digest)
        sbom = build_artifact(image, "application/vnd.cyclonedx+json", b"{}", "text/plain")
        await push_to(pair.source.host, "shop/api", sbom)
        late.append(sbom.digest)

    again = await pair.run()

    assert again.errors == []
    assert again.counts.referrers_copied == 2
    assert (again.images.copied, again.images.skipped) == (2, 4)
    await assert_mirrored(pair.source.host, pair.destination.host)
    for digest in late:
        assert await digest_of(pair.destination.host, "shop/api", digest) == digest


async def test_a_new_signature_on_an_unchanged_image_arrives_with_the_next_run(
    pair: Pair, rng: random.Random
) -> None:
    """The image's tag has not moved, its cosign .sig tag has (signed again): a re-sync that
    looked only at image tags would keep the old signature."""
    image = build_image(rng, layers=1)
    await push_to(pair.source.host, "shop/api", image, "1.0")
    async with RegistryClient(pair.source.host) as client:
        await push_signature(
            client, "shop/api", image.digest, ec.generate_private_key(ec.SECP256R1())
        )
    assert (await pair.run()).errors == []
    async with RegistryClient(pair.source.host) as client:
        again = await push_signature(
            client, "shop/api", image.digest, ec.generate_private_key(ec.SECP256R1())
        )

    report = await pair.run()

    assert report.errors == []
    assert (report.counts.referrers_copied, report.counts.manifests_copied) == (1, 1)
    tag = signature_tag(image.digest)
    assert await digest_of(pair.destination.host, "shop/api", tag) == again.digest


async def test_a_repository_is_copied_while_another_is_still_being_listed(
    pair: Pair, rng: random.Random
) -> None:
    """Images start as their repository's tags are listed: a slow listing holds up its own
    repository's images only, and the run still counts and copies every image."""
    await push_to(pair.source.host, "shop/api", build_image(rng, layers=1), "1.0")
    await push_to(pair.source.host, "shop/web", build_image(rng, layers=1), "2.0")
    pair.source_proxy.hang(1, 1.0, match="^/v2/shop/web/tags/list", method="GET")
    seen: list[tuple[int, int]] = []

    report = await replicate(
        pair.rule(),
        source_options=OPTIONS,
        destination_options=OPTIONS,
        on_progress=lambda r: seen.append((r.images_done, r.images_total)),
    )

    assert pair.source_proxy.pending() == 0
    assert (1, 1) in seen  # shop/api done while shop/web's listing was held
    assert (report.images_total, report.images.copied, report.errors) == (2, 2, [])
    await assert_mirrored(pair.source.host, pair.destination.host)


async def test_a_chain_of_referrers_past_the_depth_cap_fails_that_image(
    pair: Pair, rng: random.Random
) -> None:
    """Each referrer's referrers nest one level of awaits deeper: a hostile chain hundreds deep
    would raise RecursionError; past MAX_DEPTH the image fails with one line instead."""
    image = build_image(rng, layers=1)
    await push_to(pair.source.host, "shop/api", image, "1.0")
    chain = image
    for level in range(MAX_DEPTH + 2):
        chain = build_artifact(chain, "text/plain", b"%d" % level, "text/plain")
        await push_to(pair.source.host, "shop/api", chain)

    report = await pair.run()

    (error,) = report.errors
    assert f"nested deeper than {MAX_DEPTH} levels" in error.reason
    assert "\n" not in error.reason
    assert report.images.failed == 1


async def test_a_destination_tag_in_the_fallback_index_s_place_is_not_written_over(
    pair: Pair, rng: random.Random
) -> None:
    """The destination's ``sha256-<hex>`` tag holds an image, not a referrers index: the image
    fails with one line, and that tag keeps what it held (it was taken for no referrers and
    replaced by an index, losing it)."""
    image = build_image(rng, layers=1)
    await push_to(pair.source.host, "shop/api", image, "1.0")
    sbom = build_artifact(image, "application/spdx+json", b"{}", "application/spdx+json")
    await push_to(pair.source.host, "shop/api", sbom)  # listed in the source's fallback index
    squatter = build_image(rng, layers=1)
    tag = referrers_tag(image.digest)
    await push_to(pair.destination.host, "shop/api", squatter, tag)

    report = await pair.run()

    (error,) = report.errors
    assert f"the tag {tag} holds a " in error.reason
    assert "not a referrers index; not written over" in error.reason
    assert report.images.failed == 1
    assert await digest_of(pair.destination.host, "shop/api", tag) == squatter.digest
