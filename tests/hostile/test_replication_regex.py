"""The issue's replication case end to end: ``--tag-regex '(a+)+'`` and a tag of 28 ``a``
beside one of 40 ``a`` and a ``-`` (the backtracking worst case), against a real registry, by
the real command. With Python's ``re`` the non-matching tag alone would take hours (0.55 s at
22 characters, doubling with each); with RE2 the run ends in seconds, copying exactly the
matching tag."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from catalog.oci.client import RegistryClient
from tests.harness.images import build_image
from tests.harness.registry import run_registry
from tests.pushing import push_built


async def xregistry(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "catalog.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_nested_quantifier_tag_regex_replicates_in_seconds(
    tmp_path: Path, rng: random.Random
) -> None:
    matching, hostile = "a" * 28, "a" * 40 + "-"
    with run_registry(tmp_path) as source, run_registry(tmp_path) as destination:
        async with RegistryClient(source.host) as client:
            for tag in (matching, hostile):
                await push_built(client, "shop/api", build_image(rng, layers=1), tag)
        started = time.perf_counter()
        done = await xregistry(
            "replicate",
            "once",
            "--from",
            f"{source.host}/shop/**",
            "--to",
            f"{destination.host}/mirror",
            "--tag-regex",
            "(a+)+",
            "--output",
            "json",
        )
        elapsed = time.perf_counter() - started
        assert done.returncode == 0, done.stderr
        assert elapsed < 30, f"took {elapsed:.1f} s"  # start-up and the copy, not the regex
        assert json.loads(done.stdout)["images"]["copied"] == 1
        async with RegistryClient(destination.host) as client:
            assert [t async for t in client.tags("mirror/shop/api")] == [matching]


async def test_a_backreference_is_refused_in_one_line() -> None:
    done = await xregistry(
        "replicate", "once", "--from", "a:5000", "--to", "b:5000/m", "--tag-regex", r"(v\d)\1"
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert r"tag regex '(v\\d)\\1': invalid escape sequence: \1" in line, line
    assert "(RE2 syntax: no backreferences or look-around)" in line, line
