"""`oci:` image layouts as a replication source and destination (as `oras cp --from-oci-layout`
and regsync's `ocidir://`): a registry into layouts and back, digests and referrers kept."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catalog.cli.main import main
from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from catalog.oci.errors import LayoutError
from catalog.oci.layout import LayoutRepository
from replication.engine import replicate
from replication.rules import Rewrite, Rule
from replication.stores import LayoutStore
from tests.index.conftest import Corpus, populate
from tests.replication.conftest import OPTIONS, Pair, digest_of, push_extras


async def run(source: str, destination: str, prefix: str = "") -> dict[str, Any]:
    rule = Rule(source, destination, rewrite=Rewrite(prefix=prefix))
    report = await replicate(rule, source_options=OPTIONS, destination_options=OPTIONS)
    assert report.errors == [], report.errors
    return report.as_dict()


async def tags_and_digests(host: str) -> dict[str, str]:
    """Every repository:tag of a registry with its digest, attachment tags included."""
    found = {}
    async with RegistryClient(host) as client:
        async for repository in client.catalog():
            async for tag in client.tags(repository):
                head = await client.head_manifest(repository, tag)
                assert head is not None
                found[f"{repository}:{tag}"] = str(head.digest)
    return found


def is_fallback_tag(name: str) -> bool:
    tag = name.rsplit(":", 1)[1]
    return tag.startswith("sha256-") and "." not in tag


async def test_a_registry_into_layouts_and_back(
    pair: Pair, fixtures_dir: Path, rng: random.Random, tmp_path: Path
) -> None:
    corpus: Corpus = await populate(pair.source.host, fixtures_dir, rng)
    extras = await push_extras(pair.source.host, rng)
    backup = tmp_path / "backup"

    out = await run(pair.source_proxy.host, f"oci:{backup}")
    assert out["images"] == {"copied": 7, "skipped": 0, "failed": 0, "denied": 0}

    # One layout per repository, tags as org.opencontainers.image.ref.name, digests intact.
    layouts = sorted(p.parent.relative_to(backup).as_posix() for p in backup.rglob("oci-layout"))
    assert layouts == ["shop/api", "shop/multi", "shop/web", "slsa/app"]
    api = LayoutRepository(backup / "shop" / "api")
    for tag in ("1.0", "1.1", "1.2"):
        described = await api.resolve(tag)
        assert described is not None
        assert str(described.digest) == corpus.images[f"shop/api:{tag}"]
    # Referrers: index.json lists them (the layout's referrers listing); cosign tags stay tags.
    first = Digest.parse(corpus.images["shop/api:1.0"])
    listed = await api.referrers(first)
    assert [str(d.digest) for d in listed.descriptors] == [corpus.sboms[str(first)]]
    assert listed.scheme == "layout-index"
    signature = await api.resolve(f"{first.fallback_tag()}.sig")
    assert signature is not None
    assert str(signature.digest) == corpus.signatures[str(first)]
    multi = LayoutRepository(backup / "shop" / "multi")
    child_sbom = Digest.parse(extras.child_sbom)
    assert [str(d.digest) for d in (await multi.referrers(child_sbom)).descriptors] == [
        extras.sbom_signature
    ]

    # Back into a registry: every tag the source had, same digest, but its fallback indexes
    # (written by the replication from the layout's listing, checked below).
    again = await run(f"oci:{backup}", pair.destination_proxy.host)
    assert again["images"] == {"copied": 7, "skipped": 0, "failed": 0, "denied": 0}
    source = await tags_and_digests(pair.source.host)
    mirrored = await tags_and_digests(pair.destination.host)
    assert {k: v for k, v in mirrored.items() if not is_fallback_tag(k)} == {
        k: v for k, v in source.items() if not is_fallback_tag(k)
    }
    # Every referrer the source lists for a subject, the destination lists for it too.
    async with (
        RegistryClient(pair.source.host) as src,
        RegistryClient(pair.destination.host) as dst,
    ):
        for repository, subject in [
            ("shop/api", first),
            ("shop/api", Digest.parse(corpus.images["shop/api:1.1"])),
            ("shop/multi", child_sbom),
        ]:
            theirs = await src.referrers(repository, subject)
            ours = await dst.referrers(repository, subject)
            assert {d.digest for d in ours.descriptors} == {d.digest for d in theirs.descriptors}
            assert ours.descriptors

    # A second run finds everything in place, both ways.
    assert (await run(pair.source_proxy.host, f"oci:{backup}"))["images"]["skipped"] == 7
    assert (await run(f"oci:{backup}", pair.destination_proxy.host))["images"]["skipped"] == 7


async def test_one_layout_is_one_repository_named_after_its_folder(
    pair: Pair, fixtures_dir: Path, tmp_path: Path
) -> None:
    # The shared slsa-container fixture is a layout of its own: an index, its .att and .sig.
    layout = fixtures_dir / "slsa-container" / "v1.10.0" / "container_workflow_dispatch"
    out = await run(f"oci:{layout}", pair.destination_proxy.host, "mirror")
    assert out["images"]["copied"] == 1
    expected = (layout.parent / "container_workflow_dispatch.digest").read_text().strip()
    assert (
        await digest_of(pair.destination.host, "mirror/container_workflow_dispatch", "latest")
        == expected
    )


def test_the_command_line_takes_oci_locations(pair: Pair, tmp_path: Path) -> None:
    runner = CliRunner(env={"XREGISTRY_SERVER": None, "XREGISTRY_DATABASE": None})
    missing = runner.invoke(
        main, ["replicate", "once", "--from", f"oci:{tmp_path / 'absent'}", "--to",
               pair.destination_proxy.host]
    )  # fmt: skip
    assert missing.exit_code == 3, missing.output
    assert missing.stderr.count("\n") == 1
    assert "no such directory" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = runner.invoke(
        main, ["replicate", "once", "--from", f"oci:{empty}", "--to",
               pair.destination_proxy.host, "-o", "json"]
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["imagesTotal"] == 0


@pytest.mark.parametrize("name", ["../escape", "a/../../b", "link/x"])
def test_a_destination_stays_inside_its_directory(tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    store = LayoutStore(f"oci:{root}", create=True)
    with pytest.raises(LayoutError, match="leaves the directory"):
        store.repository(name)
    assert not (tmp_path / "escape").exists()
    assert list((tmp_path / "elsewhere").iterdir()) == []


async def test_a_named_layout_root_of_the_config_file(
    pair: Pair, rng: random.Random, tmp_path: Path
) -> None:
    from tests.harness.images import build_image
    from tests.replication.conftest import push_to

    image = build_image(rng, layers=1)
    await push_to(pair.source.host, "team/app", image, "1.0.0")
    backups = tmp_path / "srv" / "backups"
    config = tmp_path / "config.yaml"
    config.write_text(f"secrets:\n  layouts: [{{name: backups, path: {backups}}}]\n")
    runner = CliRunner(env={"XREGISTRY_SERVER": None, "XREGISTRY_DATABASE": None})
    args = ["--config", str(config), "replicate", "once", "--from", pair.source_proxy.host]
    done = await asyncio.to_thread(runner.invoke, main, [*args, "--to", "oci:backups/nightly"])
    assert done.exit_code == 0, done.output
    copied = LayoutRepository(backups / "nightly" / "team" / "app")
    found = await copied.resolve("1.0.0")
    assert found is not None
    assert str(found.digest) == image.digest
    # Below the root only: a path that climbs out is refused before anything is written.
    out = await asyncio.to_thread(runner.invoke, main, [*args, "--to", "oci:backups/../x"])
    assert out.exit_code == 2, out.output
    assert "below the layout root" in out.stderr
    assert not (tmp_path / "srv" / "x").exists()


async def test_a_stored_rule_into_and_out_of_a_layout_root(
    pair: Pair, rng: random.Random, tmp_path: Path
) -> None:
    """Stored rules name registries; an `oci:ROOT[/PATH]` registry is a layout directory below
    a root of the configuration's secrets.layouts (so a caller never names a path)."""
    from tests.harness.images import build_image
    from tests.replication.conftest import push_to

    image = build_image(rng, layers=1)
    await push_to(pair.source.host, "team/app", image, "1.0.0")
    backups = tmp_path / "backups"
    config = tmp_path / "config.yaml"
    config.write_text(f"secrets:\n  layouts: [{{name: backups, path: {backups}}}]\n")
    runner = CliRunner(env={"XREGISTRY_SERVER": None, "XREGISTRY_DATABASE": None})
    root = ["--config", str(config), "--database", f"sqlite:///{tmp_path / 'cli.db'}"]

    async def ok(*args: str) -> str:
        done = await asyncio.to_thread(runner.invoke, main, [*root, *args])
        assert done.exit_code == 0, (args, done.output)
        return done.stdout

    await ok("registry", "add", "src", pair.source_proxy.host)
    await ok("registry", "add", "dst", pair.destination_proxy.host)
    await ok("registry", "add", "nightly", "oci:backups/nightly")
    await ok("replicate", "rule", "add", "out", "--from", "src/team/**", "--to", "nightly")
    await ok("replicate", "run", "out", "--wait")
    written = await LayoutRepository(backups / "nightly" / "team" / "app").resolve("1.0.0")
    assert written is not None
    assert str(written.digest) == image.digest

    await ok("replicate", "rule", "add", "back", "--from", "nightly", "--to", "dst/restored")
    await ok("replicate", "run", "back", "--wait")
    assert await digest_of(pair.destination.host, "restored/team/app", "1.0.0") == image.digest
