"""The commands users of crane, skopeo, oras and cosign reach for: ``manifest``, ``digest``,
``tags``, ``tree``, ``copy`` and ``--platform``, against a real registry and image layouts."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from catalog.app.catalog_reads import CatalogReads
from catalog.cli import tags
from catalog.cli.context import Reader
from catalog.cli.remote import RemoteCatalog
from catalog.cli.tree import DEPTH_MAX
from catalog.errors import InvalidArgument
from catalog.oci.client import RegistryClient
from catalog.oci.options import RegistryOptions
from catalog.oci.reference import parse_image_reference, parse_reference
from catalog.store.db import make_engine, session_factory
from tests.cli.test_catalog_cli import ok, run
from tests.harness.images import build_artifact, build_image
from tests.harness.registry import RunningRegistry
from tests.index.conftest import populate
from tests.pushing import push_built

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _kinds(node: dict[str, Any]) -> list[tuple[str, str | None]]:
    return sorted((r["kind"], r["scheme"]) for r in node["referrers"])


async def test_manifest_digest_platform_tree(
    registry: RunningRegistry, fixtures_dir: Path, rng: random.Random
) -> None:
    corpus = await populate(registry.host, fixtures_dir, rng)
    index_ref = f"{registry.host}/slsa/app:v1"
    raw = run("manifest", index_ref)
    assert raw.returncode == 0, raw.stderr
    # The exact bytes: their hash is the digest (text mode would not change ASCII JSON).
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == corpus.slsa_index
    assert ok(run("digest", index_ref)) == corpus.slsa_index + "\n"
    described = json.loads(ok(run("digest", index_ref, "-o", "json")))
    assert described == {
        "reference": index_ref,
        "digest": corpus.slsa_index,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "size": len(raw.stdout.encode()),
    }
    amd64 = ok(run("digest", index_ref, "--platform", "linux/amd64")).strip()
    child = json.loads(ok(run("manifest", index_ref, "--platform", "linux/amd64")))
    assert child["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    inspected = json.loads(ok(run("inspect", index_ref, "--platform", "linux/amd64", "-o", "json")))
    assert inspected["digest"] == amd64 != corpus.slsa_index
    missing = run("digest", index_ref, "--platform", "linux/s390x")
    assert missing.returncode == 3
    assert "its platforms: linux/amd64" in missing.stderr
    bad = run("manifest", index_ref, "--platform", "linux")
    assert bad.returncode == 2
    assert bad.stderr.startswith("xregistry: error: invalid platform 'linux'")
    # A single image has its config's platform: the harness builds linux/amd64.
    image_ref = f"{registry.host}/shop/api:1.0"
    image = corpus.images["shop/api:1.0"]
    assert ok(run("digest", image_ref, "--platform", "linux/amd64")).strip() == image
    assert run("digest", image_ref, "--platform", "linux/arm64").returncode == 3
    assert run("digest", f"{registry.host}/shop/api:nope").returncode == 3

    tree = json.loads(ok(run("tree", image_ref, "-o", "json")))
    assert (tree["digest"], tree["kind"], tree["manifests"]) == (image, "image", [])
    assert _kinds(tree) == [("sbom", "fallback-tag"), ("signature", "cosign-tag")]
    assert {r["digest"] for r in tree["referrers"]} == {
        corpus.signatures[image],
        corpus.sboms[image],
    }
    tree = json.loads(ok(run("tree", index_ref, "-o", "json")))
    assert tree["kind"] == "index"
    assert _kinds(tree) == [("attestation", "cosign-tag")]
    (platform,) = tree["manifests"]
    assert (platform["platform"], platform["digest"]) == ("linux/amd64", amd64)
    assert _kinds(platform) == [("attestation", "in-index")]
    human = ok(run("tree", index_ref))
    assert corpus.slsa_index in human
    assert "linux/amd64" in human


async def test_a_tree_stops_at_its_depth(registry: RunningRegistry, rng: random.Random) -> None:
    """Signatures on signatures on …: followed DEPTH_MAX levels below the image, no further."""
    image = build_image(rng, layers=1, layer_size=64)
    async with RegistryClient(registry.host) as client:
        await push_built(client, "deep/app", image, "1")
        subject = image
        for level in range(8):
            subject = build_artifact(
                subject, "application/x-level", str(level).encode(), "text/plain"
            )
            await push_built(client, "deep/app", subject)
    tree = json.loads(ok(run("tree", f"{registry.host}/deep/app:1", "-o", "json")))
    depth = 0
    node = tree
    while node["referrers"]:
        (node,) = node["referrers"]
        depth += 1
    assert depth == DEPTH_MAX < 8  # the chain is longer than what is followed


async def test_tags_live_and_from_the_catalog(
    server: str,
    fresh_registry: RunningRegistry,
    fixtures_dir: Path,
    rng: random.Random,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = await populate(fresh_registry.host, fixtures_dir, rng)
    repo = f"{fresh_registry.host}/shop/api"
    live = ok(run("tags", repo)).split()
    assert live[:3] == ["1.0", "1.1", "1.2"]
    assert live == sorted(live)
    assert json.loads(ok(run("tags", repo, "-o", "json"))) == live
    db = tmp_path / "catalog.db"
    ok(run("registry", "add", "local", fresh_registry.host, db=db))
    ok(run("index", "local", db=db))
    ok(run("index", "local", server=server))
    answers = [
        json.loads(ok(run("tags", repo, "--catalog", "--all", "-o", "json", db=db))),
        json.loads(ok(run("tags", repo, "--catalog", "--all", "-o", "json", server=server))),
    ]
    for recorded in answers:
        assert [t["tag"] for t in recorded] == live
        first = recorded[0]
        assert (first["digest"], first["gone"]) == (corpus.images["shop/api:1.0"], False)
        assert first["updateTime"].endswith("Z")
    assert [{k: v for k, v in t.items() if k != "updateTime"} for t in answers[0]] == [
        {k: v for k, v in t.items() if k != "updateTime"} for t in answers[1]
    ]
    table = ok(run("tags", repo, "--catalog", db=db))
    assert corpus.images["shop/api:1.0"] in table  # whole, never folded
    # Past TAGS_MAX the catalog's list is refused as the live one is, on either backend (it was
    # cut silently on the database, and read whole from a server before being cut).
    monkeypatch.setattr(tags, "TAGS_MAX", len(live) - 1)
    ref = parse_image_reference(repo)
    readers: list[Reader] = [
        CatalogReads(session_factory(make_engine(f"sqlite:///{db}"))),
        RemoteCatalog(server),
    ]
    for reader in readers:
        with pytest.raises(InvalidArgument, match=f"more than {len(live) - 1} tags"):
            tags._recorded(reader, ref, True)
    with pytest.raises(InvalidArgument, match=f"more than {len(live) - 1} tags"):
        await tags._live(parse_reference(repo, default_tag=None), RegistryOptions())
    monkeypatch.setattr(tags, "TAGS_MAX", len(live))
    assert [v.name for v in tags._recorded(readers[1], ref, True)] == live
    for args, code in [
        (("tags", f"{repo}:1.0"), 2),
        (("tags", repo, "--all"), 2),
        (("tags", f"{fresh_registry.host}/absent/repo", "--catalog"), 3),
        (("tags", "reg.invalid:5000/shop/api", "--catalog"), 3),
    ]:
        done = run(*args, db=db)
        assert done.returncode == code, (args, done.stderr)


async def test_copy_between_layouts_and_registries(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    """The example layout into a registry (with its cosign attestation), the SBOM referrer after
    it, back out to a new layout, and again: digests unchanged, nothing sent twice."""
    digest = (EXAMPLES / "slsa-container.digest").read_text().strip()
    target = f"{registry.host}/copied/app:v1"
    first = json.loads(ok(run("copy", f"oci:{EXAMPLES / 'slsa-container'}", target, "-o", "json")))
    assert (first["digest"], first["referrers"]) == (digest, 1)
    assert first["manifestsCopied"] == 4  # index, image, BuildKit attestation, cosign .att
    ok(run("copy", f"oci:{EXAMPLES / 'sbom-referrer'}", f"{registry.host}/copied/app"))
    tree = json.loads(ok(run("tree", target, "-o", "json")))
    assert tree["digest"] == digest
    assert _kinds(tree) == [("attestation", "cosign-tag"), ("sbom", "fallback-tag")]

    layout = tmp_path / "backup"
    ok(run("copy", target, f"oci:{layout}:v1"))
    assert ok(run("digest", f"oci:{layout}:v1")).strip() == digest
    again = json.loads(ok(run("copy", target, f"oci:{layout}:v1", "-o", "json")))
    assert (again["manifestsCopied"], again["blobsCopied"]) == (0, 0)
    backed_up = json.loads(ok(run("tree", f"oci:{layout}:v1", "-o", "json")))
    assert sorted(r["digest"] for r in backed_up["referrers"]) == sorted(
        r["digest"] for r in tree["referrers"]
    )
    by_digest = json.loads(
        ok(
            run(
                "copy",
                f"oci:{EXAMPLES / 'slsa-container'}@{digest}",
                f"{registry.host}/by/digest:x",
                "-o",
                "json",
            )
        )
    )
    assert by_digest["digest"] == digest
    refused = run("copy", target, f"{registry.host}/x/y@{digest}")
    assert refused.returncode == 2
    assert "not a digest" in refused.stderr
    absent = run("copy", f"oci:{tmp_path / 'absent'}", f"oci:{tmp_path / 'out'}")
    assert absent.returncode == 3
    assert not (tmp_path / "out").exists()  # nothing made for a source that is not there


async def test_a_tree_is_bounded_in_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past NODES_MAX manifests the walk stops with an error instead of following on."""
    from catalog.cli import tree
    from catalog.oci.attachments import listed_tags
    from catalog.oci.layout import LayoutRepository

    layout = LayoutRepository(EXAMPLES / "slsa-container")
    index = await layout.get_manifest(layout.default_ref())
    tags = await listed_tags(layout)
    assert tags  # the cosign tags among them
    whole = await tree._Walk(layout, tags).image(index)  # index, image, two attestations
    assert len(whole.manifests) + len(whole.referrers) + len(whole.manifests[0].referrers) == 3
    # The tags listed once find what asking for each cosign tag finds.
    assert whole == await tree._Walk(layout, None).image(index)
    monkeypatch.setattr(tree, "NODES_MAX", 3)
    with pytest.raises(tree.TreeTooLarge, match="more than 3 manifests"):
        await tree._Walk(layout, tags).image(index)
    assert await listed_tags(layout, most=len(tags) - 1) is None  # too many: asked one by one
