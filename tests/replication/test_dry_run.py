"""`replicate once --dry-run`: what a run would copy, found by the same steps, nothing written."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from catalog.cli.main import main
from catalog.oci.client import RegistryClient
from tests.index.conftest import Corpus, populate
from tests.replication.conftest import Pair, push_extras

WRITES = ("PUT", "POST", "PATCH", "DELETE")


async def once(*args: str) -> Any:
    """The command in a thread: it runs its own event loop."""
    runner = CliRunner(env={"XREGISTRY_SERVER": None, "XREGISTRY_DATABASE": None, "COLUMNS": "80"})
    return await asyncio.to_thread(runner.invoke, main, ["replicate", "once", *args])


def totals(report: dict[str, Any]) -> tuple[int, ...]:
    return (
        report["manifests"]["copied"],
        report["blobs"]["copied"],
        report["bytes"]["copied"],
        report["referrers"]["copied"],
    )


async def catalog_of(host: str) -> list[str]:
    async with RegistryClient(host) as client:
        return [name async for name in client.catalog()]


async def test_a_dry_run_says_what_the_run_then_does(
    pair: Pair, fixtures_dir: Path, rng: random.Random
) -> None:
    corpus: Corpus = await populate(pair.source.host, fixtures_dir, rng)
    await push_extras(pair.source.host, rng)
    src, dst = pair.source_proxy.host, f"{pair.destination_proxy.host}/mirror"

    dry = await once("--from", src, "--to", dst, "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    # Nothing written, no blob read: the destination is as it was.
    assert sum(pair.destination_proxy.count(m, "/v2/") for m in WRITES) == 0
    assert pair.source_proxy.count("GET", "/blobs/") == 0
    assert await catalog_of(pair.destination.host) == []

    assert planned["dryRun"] is True
    images = {(p["repository"], p["tag"]): p for p in planned["planned"]}
    assert len(images) == planned["imagesTotal"] == 7
    api = images[("shop/api", "1.0")]
    assert (api["destination"], api["digest"], api["action"]) == (
        "mirror/shop/api", corpus.images["shop/api:1.0"], "copy"
    )  # fmt: skip
    assert api["referrers"] == 2  # its cosign .sig and its SBOM (fallback index)
    assert api["bytes"] > 2048
    assert sum(p["bytes"] for p in planned["planned"]) == planned["bytes"]["copied"]

    # The table: every image with its whole digest, on one line each even at 80 columns.
    table = await once("--from", src, "--to", dst, "--dry-run")
    assert table.exit_code == 0, table.output
    assert "nothing written" in table.stdout
    for digest in corpus.images.values():
        assert digest in table.stdout
    assert "would copy 7 images" in table.stdout

    # The real run copies exactly what the dry run announced.
    real = await once("--from", src, "--to", dst, "-o", "json")
    assert real.exit_code == 0, real.output
    assert totals(json.loads(real.stdout)) == totals(planned)

    # Now in place: a dry run finds nothing to copy.
    pair.destination_proxy.reset_counters()
    again = json.loads((await once("--from", src, "--to", dst, "--dry-run", "-o", "json")).stdout)
    assert {p["action"] for p in again["planned"]} == {"skip"}
    assert totals(again) == (0, 0, 0, 0)
    assert sum(pair.destination_proxy.count(m, "/v2/") for m in WRITES) == 0


async def test_a_dry_run_into_layouts_creates_nothing(
    pair: Pair, fixtures_dir: Path, rng: random.Random, tmp_path: Path
) -> None:
    await populate(pair.source.host, fixtures_dir, rng)
    target = tmp_path / "backup"
    source = pair.source_proxy.host
    dry = await once("--from", source, "--to", f"oci:{target}", "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.output
    assert not target.exists()
    planned = json.loads(dry.stdout)
    real = await once("--from", source, "--to", f"oci:{target}", "-o", "json")
    assert real.exit_code == 0, real.output
    assert totals(json.loads(real.stdout)) == totals(planned)


async def test_a_conflict_is_announced_not_written(pair: Pair, rng: random.Random) -> None:
    from tests.harness.images import build_image
    from tests.replication.conftest import digest_of, push_to

    ours, theirs = build_image(rng, layers=1), build_image(rng, layers=1)
    await push_to(pair.source.host, "app", ours, "1.0")
    await push_to(pair.destination.host, "app", theirs, "1.0")
    dry = await once("--from", pair.source_proxy.host, "--to", pair.destination_proxy.host,
               "--conflict", "report", "--dry-run", "-o", "json")  # fmt: skip
    assert dry.exit_code == 1  # as the run would
    (entry,) = json.loads(dry.stdout)["planned"]
    assert entry["action"] == "conflict"
    assert theirs.digest in entry["reason"]
    assert await digest_of(pair.destination.host, "app", "1.0") == theirs.digest
