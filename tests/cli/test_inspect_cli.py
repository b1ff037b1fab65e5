"""``xregistry inspect`` as a user runs it: a real process, real registry, real exit codes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from catalog.oci.copy import copy_manifest, copy_tag
from catalog.oci.layout import LayoutRepository
from catalog.oci.repository import RemoteRepository
from tests.conftest import ClientFactory
from tests.harness.images import build_image, build_multiplatform
from tests.harness.ports import free_port
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built


def xregistry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_inspect_registry_image_with_every_referrer_scheme(
    registry: RunningRegistry, make_client: ClientFactory, fixtures_dir: Path, rng: random.Random
) -> None:
    layout = LayoutRepository(
        fixtures_dir / "slsa-container" / "v2.0.0" / "container_workflow_dispatch"
    )
    remote = RemoteRepository(make_client(registry.host), "cli/slsa")
    await copy_manifest(layout, remote, await layout.get_manifest(layout.default_ref()), "v2")
    async for tag in layout.tags():
        await copy_tag(layout, remote, tag)

    done = xregistry("inspect", f"{registry.host}/cli/slsa:v2", "--output", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) >= {"digest", "mediaType", "size", "artifactType", "platforms", "referrers"}
    expected = (layout.root.parent / "container_workflow_dispatch.digest").read_text().strip()
    assert doc["digest"] == expected
    assert doc["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [p["os"] for p in doc["platforms"]] == ["linux"]
    att = [r for r in doc["referrers"] if r["scheme"] == "cosign-tag"]
    assert len(att) == 1
    assert att[0]["artifactType"] == "application/vnd.dsse.envelope.v1+json"

    human = xregistry("inspect", f"{registry.host}/cli/slsa:v2")
    assert human.returncode == 0
    assert "cosign-tag" in human.stdout


async def test_inspect_lists_fallback_referrers(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    from tests.harness.images import build_artifact

    client = make_client(registry.host)
    index = build_multiplatform(rng)
    await push_built(client, "cli/multi", index, "v1")
    sbom = build_artifact(index, "application/spdx+json", b"{}", "application/spdx+json")
    await push_built(client, "cli/multi", sbom)
    doc = json.loads(xregistry("inspect", f"{registry.host}/cli/multi:v1", "-o", "json").stdout)
    assert [p["architecture"] for p in doc["platforms"]] == ["amd64", "arm64"]
    assert doc["platforms"][1]["variant"] == "v8"
    assert doc["referrers"] == [
        {
            "digest": sbom.digest,
            "artifactType": "application/spdx+json",
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "scheme": "fallback-tag",
            "subject": index.digest,
        }
    ]


async def test_inspect_errors_are_one_line_with_distinct_exit_codes(
    registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    await push_built(make_client(registry.host), "cli/one", build_image(rng, layers=1), "v1")
    cases = [
        (["inspect", "Bad Ref"], 2, "invalid reference"),
        (["inspect", f"{registry.host}/cli/one:missing"], 3, "MANIFEST_UNKNOWN"),
        (["inspect", f"127.0.0.1:{free_port()}/x:y"], 4, "unreachable"),
        (["inspect", "oci:/nonexistent/layout"], 3, "no such directory"),
    ]
    for args, code, message in cases:
        done = xregistry(*args)
        assert done.returncode == code, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("xregistry: error:")
        assert message in lines[0]


def test_help_teaches() -> None:
    done = xregistry("inspect", "--help")
    assert done.returncode == 0
    assert "oci:PATH" in done.stdout
    assert "--insecure" in done.stdout


def test_every_lazy_command_resolves_under_its_own_name() -> None:
    import click

    from catalog.cli.main import COMMANDS, main

    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None
        assert command.name == name
    assert main.get_command(ctx, "nonsense") is None
    assert set(COMMANDS) == set(main.list_commands(ctx))
