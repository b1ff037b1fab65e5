"""``xregistry replicate once`` as a user runs it: a real process, real registries, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from catalog.oci.client import RegistryClient
from tests.cli.test_import_budget import forbidden, imported, probe
from tests.harness.images import build_artifact, build_image
from tests.replication.conftest import Pair, assert_mirrored, push_to
from tests.signing import push_signature


async def xregistry(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "catalog.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def seed(pair: Pair, rng: random.Random) -> list[str]:
    key = ec.generate_private_key(ec.SECP256R1())
    layers = []
    for repository, tag in (("shop/api", "1.0"), ("shop/web", "2.0"), ("other/x", "1")):
        image = build_image(rng, layers=1, layer_size=50_000)
        await push_to(pair.source.host, repository, image, tag)
        async with RegistryClient(pair.source.host) as client:
            await push_signature(client, repository, image.digest, key)
        sbom = build_artifact(image, "application/spdx+json", b"{}", "text/spdx+json")
        await push_to(pair.source.host, repository, sbom)
        layers.append(image.layers[0].digest)
    return layers


async def test_replicate_once_json_then_nothing_to_do(pair: Pair, rng: random.Random) -> None:
    await seed(pair, rng)
    args = [
        "replicate",
        "once",
        "--from",
        f"{pair.source_proxy.host}/shop/**",
        "--to",
        f"{pair.destination_proxy.host}/mirror",
        "--output",
        "json",
    ]

    first = await xregistry(*args)

    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["images"] == {"copied": 2, "skipped": 0, "failed": 0, "denied": 0}
    assert doc["referrers"] == {"copied": 4, "skipped": 0, "failed": 0}
    assert doc["errors"] == []
    again = json.loads((await xregistry(*args)).stdout)
    assert again["images"] == {"copied": 0, "skipped": 2, "failed": 0, "denied": 0}
    assert again["bytes"]["copied"] == 0


async def test_replicate_once_table_and_failing_exit_code(pair: Pair, rng: random.Random) -> None:
    layers = await seed(pair, rng)
    pair.source_proxy.corrupt(1, match=f"/blobs/{layers[2]}$", method="GET")

    done = await xregistry(
        "replicate",
        "once",
        "--from",
        pair.source_proxy.host,
        "--to",
        pair.destination_proxy.host,
        "--tags",
        "*",
        "--referrers",
        "signatures,sboms",
        "--parallel",
        "2",
    )

    assert done.returncode == 1, done.stderr
    assert "replicated" in done.stdout
    assert "failed images" in done.stdout
    assert "other/x" in done.stdout
    assert "digest mismatch" in done.stdout
    rerun = await xregistry(
        "replicate", "once", "--from", pair.source_proxy.host, "--to", pair.destination_proxy.host
    )
    assert rerun.returncode == 0, rerun.stdout
    await assert_mirrored(pair.source.host, pair.destination.host)


async def test_replicate_once_usage_errors() -> None:
    bad_kinds = await xregistry(
        "replicate", "once", "--from", "a:5000", "--to", "b:5000", "--referrers", "tattoos"
    )
    assert bad_kinds.returncode == 2
    assert "signatures, attestations, sboms" in bad_kinds.stderr
    url = await xregistry("replicate", "once", "--from", "http://a:5000", "--to", "b:5000")
    assert url.returncode == 2
    assert "REGISTRY[/PATH]" in url.stderr
    same = await xregistry("replicate", "once", "--from", "a:5000", "--to", "a:5000")
    assert same.returncode == 2
    assert "same repositories" in same.stderr


async def test_replicate_once_renames_by_pattern(pair: Pair, rng: random.Random) -> None:
    await seed(pair, rng)

    done = await xregistry(
        "replicate", "once", "--from", f"{pair.source_proxy.host}/shop/**",
        "--to", pair.destination_proxy.host, "--rename", r"shop/(.*)=mirror/shop-\1",
        "--output", "json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["images"]["copied"] == 2
    async with RegistryClient(pair.destination.host) as dst:
        assert sorted([r async for r in dst.catalog()]) == ["mirror/shop-api", "mirror/shop-web"]
    both = await xregistry(
        "replicate", "once", "--from", "a:5000", "--to", "b:5000/m", "--rename", "(.*)=x/\\1"
    )
    assert both.returncode == 2
    assert "give it or a PREFIX in --to, not both" in both.stderr


# What a copy between registries has no use for (issue 16: `replicate once` starts in a blink):
# the catalog's database, signatures' verification, configs, gRPC; and, on a run between
# registries with every referrer kind and no version rule, the layout, dry-run, classification
# and SemVer code. Nor aiohttp: a one-shot command talks HTTP on asyncio's own streams
# (catalog.oci._stdlib), aiohttp's import alone costing more than the whole no-change run; nor
# http.client (its e-mail parser) and a thread pool, which that client no longer needs; nor RE2
# (nor catalog.regex) for a rule of `**` alone, which needs no pattern; nor `dataclasses` (its
# decorator compiles each class's methods at import: the path's records are written out),
# `random` (a retry's jitter, imported at the first retry) or the credential helpers' runner.
ONCE_NEVER = (
    "dataclasses",
    "random",
    "catalog.regex",
    "catalog.oci._bounded_run",
    "aiohttp",
    "yarl",
    "multidict",
    "catalog.oci._transport",
    "http.client",
    "email",
    "concurrent.futures.thread",
    "re2",
    "sqlalchemy",
    "alembic",
    "sigstore",
    "pydantic",
    "yaml",
    "grpc",
    "catalog.store",
    "catalog.index",
    "catalog.gate",
    "catalog.trust",
    "catalog.app",
    "catalog.formats",
    "catalog.oci.layout",
    "replication.dryrun",
    "replication.service",
    "replication.worker",
    "nodesemver",
    "replication.versions",
    "catalog.oci.secrets",
    # The stored rules' commands, their views and the runs' statuses: `replicate rule|run|status`.
    "catalog.cli.replicate_rules",
    "catalog.cli.replicate_views",
    "replication.statuses",
)


async def test_replicate_once_imports_only_what_a_copy_needs(
    pair: Pair, rng: random.Random, tmp_path: Path
) -> None:
    """A copy imports only what it needs; blob uploads are imported by the first one, so a
    no-change re-sync, which writes nothing, goes without."""
    await seed(pair, rng)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XREGISTRY_")}
    args = ["replicate", "once", "--from", pair.source_proxy.host]
    args += ["--to", f"{pair.destination_proxy.host}/mirror", "--output", "json"]

    modules = await asyncio.to_thread(imported, tmp_path, args, env)

    assert "replication.engine" in modules  # it ran
    assert forbidden(modules, ONCE_NEVER) == []
    async with RegistryClient(pair.destination.host) as dst:  # and copied
        assert "mirror/shop/api" in [r async for r in dst.catalog()]
    assert "catalog.oci._uploads" in modules  # the probe sees it where it is used

    unchanged, done = await asyncio.to_thread(probe, tmp_path, args, env)

    assert json.loads(done.stdout)["images"] == {
        "copied": 0,
        "skipped": 3,
        "failed": 0,
        "denied": 0,
    }
    assert "replication.engine" in unchanged
    assert "catalog.oci._uploads" not in unchanged


# A NamedTuple's field type written as a string (``from __future__ import annotations``) is
# compiled to a ForwardRef when the class is made (~40k instructions each; 95 on this path before
# issue 16's tenth session). Left: Rule.referrers (its type's module, catalog.formats, is not
# imported by a copy).
_FORWARD_REFS = """
import collections, json, sys, typing
made = collections.Counter()
init = typing.ForwardRef.__init__

def counting(self, *args, **kwargs):
    caller = sys._getframe(1)
    while caller.f_globals["__name__"] == "typing":
        caller = caller.f_back
    made[caller.f_globals["__name__"]] += 1  # the module the class is made in
    init(self, *args, **kwargs)

typing.ForwardRef.__init__ = counting
import catalog.cli.main, catalog.cli.replicate, catalog.oci._stdlib
print(json.dumps({m: n for m, n in made.items() if m.startswith(("catalog", "replication"))}))
"""


def test_replicate_once_makes_its_records_without_compiling_field_types() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FORWARD_REFS], capture_output=True, text=True, check=True
    )

    assert json.loads(done.stdout) == {"replication.rules": 1}
