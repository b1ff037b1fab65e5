"""Image layouts: the slsa-container fixtures through a real registry and back, byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from catalog.oci.attachments import find_attachments
from catalog.oci.copy import copy_manifest, copy_tag
from catalog.oci.describe import inspect
from catalog.oci.digest import Digest
from catalog.oci.errors import DigestMismatch, LayoutError, ManifestUnknown
from catalog.oci.layout import LayoutRepository
from catalog.oci.manifest import parse_manifest
from catalog.oci.reference import parse_reference
from catalog.oci.repository import RemoteRepository
from tests.conftest import ClientFactory
from tests.harness.registry import RunningRegistry
from tests.hostile.registry_fakes import CONFIG, MANIFEST

LAYOUTS = ["v1.10.0", "v2.0.0"]


def fixture_layout(fixtures_dir: Path, version: str) -> Path:
    return fixtures_dir / "slsa-container" / version / "container_workflow_dispatch"


def blob_digests(layout: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (layout / "blobs" / "sha256").iterdir()}


@pytest.mark.parametrize("version", LAYOUTS)
async def test_fixture_layout_round_trips_through_a_registry(
    version: str,
    fixtures_dir: Path,
    registry: RunningRegistry,
    make_client: ClientFactory,
    tmp_path: Path,
) -> None:
    source = LayoutRepository(fixture_layout(fixtures_dir, version))
    expected = fixture_layout(fixtures_dir, version).parent / "container_workflow_dispatch.digest"
    image_digest = expected.read_text().strip()
    remote = RemoteRepository(make_client(registry.host), f"slsa/{version.replace('.', '-')}")

    tags = [t async for t in source.tags()]
    assert tags == ["latest", f"{Digest.parse(image_digest).fallback_tag()}.att"]
    image = await source.get_manifest(source.default_ref())
    assert str(image.digest) == image_digest
    await copy_manifest(source, remote, image, "v1")
    for tag in tags:
        await copy_tag(source, remote, tag)

    # Read everything back from the registry into a fresh layout: every digest identical.
    back = LayoutRepository(tmp_path / "back", create=True)
    await copy_tag(remote, back, "v1")
    for tag in tags:
        await copy_tag(remote, back, tag)
    assert blob_digests(back.root) == blob_digests(source.root)
    for digest in blob_digests(source.root):
        d = Digest.parse(digest)
        assert back.blob_path(d).read_bytes() == source.blob_path(d).read_bytes()
    assert (await remote.get_manifest("v1")).raw == image.raw

    attachments = await find_attachments(remote, await remote.get_manifest("v1"))
    att = [a for a in attachments if a.scheme == "cosign-tag"]
    assert len(att) == 1
    assert att[0].artifact_type == "application/vnd.dsse.envelope.v1+json"
    assert {a.scheme for a in attachments} == {"cosign-tag", "in-index"}


async def test_inspect_a_layout_lists_the_attestation(fixtures_dir: Path) -> None:
    path = fixture_layout(fixtures_dir, "v1.10.0")
    result = (await inspect(parse_reference(f"oci:{path}"))).to_json()
    assert result["digest"] == (path.parent / "container_workflow_dispatch.digest").read_text()
    assert [p["architecture"] for p in result["platforms"]] == ["amd64"]
    schemes = sorted(r["scheme"] for r in result["referrers"])
    assert schemes == ["cosign-tag", "in-index"]


async def test_layout_destination_refuses_corrupt_blobs(tmp_path: Path) -> None:
    layout = LayoutRepository(tmp_path / "dst", create=True)
    good = Digest.of(b"good")

    async def corrupt() -> object:
        yield b"bad!"

    with pytest.raises(DigestMismatch):
        await layout.push_blob(good, corrupt(), 4)  # type: ignore[arg-type]
    assert not layout.blob_path(good).exists()
    assert [p.name for p in layout.blob_path(good).parent.iterdir()] == []


async def test_layout_refuses_paths_that_escape(tmp_path: Path) -> None:
    layout = LayoutRepository(tmp_path / "dst", create=True)
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")
    digest = Digest("sha256", hashlib.sha256(b"secret").hexdigest())
    (layout.root / "blobs" / "sha256").mkdir(parents=True)
    os.symlink(outside, layout.blob_path_unchecked(digest))
    with pytest.raises(LayoutError, match="outside the layout"):
        await layout.has_blob(digest)


async def test_layout_errors_are_clear(tmp_path: Path, fixtures_dir: Path) -> None:
    with pytest.raises(LayoutError, match="no such directory"):
        LayoutRepository(tmp_path / "absent")
    (tmp_path / "plain").mkdir()
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        LayoutRepository(tmp_path / "plain")
    copy = tmp_path / "copy"
    shutil.copytree(fixture_layout(fixtures_dir, "v1.10.0"), copy)
    layout = LayoutRepository(copy)
    with pytest.raises(ManifestUnknown, match="no manifest tagged"):
        await layout.get_manifest("nope")
    index = json.loads((copy / "index.json").read_text())
    target = index["manifests"][0]["digest"].split(":")[1]
    (copy / "blobs" / "sha256" / target).write_bytes(b"{}")
    with pytest.raises(DigestMismatch):
        await layout.get_manifest(layout.default_ref())


async def test_what_a_layout_writes_is_on_disk_before_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each blob and index.json reach the disk before their rename, and each rename before the
    next write: a crash cannot leave index.json naming an empty blob, or itself empty."""
    layout = LayoutRepository(tmp_path / "dst", create=True)
    done: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def synced(fd: int) -> None:
        done.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def renamed(src: str, dst: str | Path) -> None:
        done.append(("rename", f"{src} -> {dst}"))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", synced)
    monkeypatch.setattr(os, "replace", renamed)
    config, manifest = CONFIG, MANIFEST  # an image of no layers
    await layout.push_blob(Digest.of(config), config)
    await layout.put_manifest(parse_manifest(manifest), "v1")

    root = tmp_path / "dst"
    blobs = root / "blobs" / "sha256"
    config_blob, manifest_blob = blobs / Digest.of(config).hex, blobs / Digest.of(manifest).hex
    kinds = [kind for kind, _ in done]
    # config and manifest: synced, renamed; index.json: synced, the blobs' folder synced (their
    # renames), renamed, its folder synced.
    assert kinds == ["fsync", "rename"] * 2 + ["fsync", "fsync", "rename", "fsync"]
    for (_, written), (_, rename) in [(done[0], done[1]), (done[2], done[3]), (done[4], done[6])]:
        assert rename.startswith(f"{written} -> ")  # the file synced is the one renamed
    assert done[1][1].endswith(f"-> {config_blob}")
    assert done[3][1].endswith(f"-> {manifest_blob}")
    assert done[5][1] == str(blobs)
    assert done[6][1].endswith(f"-> {root / 'index.json'}")
    assert done[7][1] == str(root)
