"""``oci:`` layouts are read under caps: an oversized ``index.json`` or manifest blob is refused
from its size before it is read, a FIFO never blocks the reader, a deeply nested index is an
error; ``xregistry inspect`` says so in one line with its exit code and a bounded peak RSS.

Before: a 300 MB ``index.json`` was read whole (+900 MB RSS, the loop blocked 3.5 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog.oci.digest import Digest
from catalog.oci.errors import InvalidManifest, LayoutError, ManifestTooLarge
from catalog.oci.layout import DEFAULT_INDEX_LIMIT, LayoutRepository

MB = 1024 * 1024


def layout(root: Path) -> Path:
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_bytes(b'{"schemaVersion":2,"manifests":[]}')
    return root


def huge_index(root: Path, size: int) -> None:
    """A valid start, then a sparse hole: ``size`` bytes that take no disk."""
    with (root / "index.json").open("wb") as f:
        f.write(b'{"schemaVersion":2,"manifests":[' + b" " * 64)
        f.truncate(size)


def inspect_child(target: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """``xregistry inspect TARGET`` in a child of a fresh interpreter that reports the peak RSS
    (KiB) of that child alone, so no earlier test's children count."""
    probe = (
        "import resource, subprocess, sys, json\n"
        "done = subprocess.run([sys.executable, '-m', 'catalog.cli.main', 'inspect', sys.argv[1]],"
        " capture_output=True, text=True, timeout=120)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps([done.returncode, done.stdout, done.stderr, peak]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XREGISTRY_SERVER"}
    started = time.perf_counter()
    outer = subprocess.run(
        [sys.executable, "-c", probe, target],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
        env=env,
    )
    elapsed = time.perf_counter() - started
    code, stdout, stderr, peak = json.loads(outer.stdout)
    return subprocess.CompletedProcess([], code, stdout, stderr), elapsed, peak


async def test_an_oversized_index_is_refused_before_reading(tmp_path: Path) -> None:
    root = layout(tmp_path / "layout")
    huge_index(root, 300 * MB)
    repository = LayoutRepository(root)
    started = time.perf_counter()
    with pytest.raises(InvalidManifest) as refused:
        await repository.resolve("latest")
    assert time.perf_counter() - started < 0.1
    assert str(refused.value) == (
        f"{root}/index.json is {300 * MB} bytes, over the {DEFAULT_INDEX_LIMIT}-byte limit"
    )
    # The cap is the layout's own, configurable; at the cap exactly the file is read.
    empty = b'{"schemaVersion":2,"manifests":[]}'
    (root / "index.json").write_bytes(empty.ljust(4096))
    capped = LayoutRepository(root, index_limit=4096)
    assert await capped.resolve("latest") is None
    (root / "index.json").write_bytes(empty.ljust(4097))
    with pytest.raises(InvalidManifest, match="4097 bytes, over the 4096-byte limit"):
        await capped.resolve("latest")


def test_inspect_refuses_a_300_mb_index_in_one_line_with_bounded_memory(tmp_path: Path) -> None:
    root = layout(tmp_path / "layout")
    huge_index(root, 300 * MB)
    done, elapsed, peak_kib = inspect_child(f"oci:{root}")
    assert done.returncode == 6, done.stderr
    assert done.stderr.strip() == (
        f"xregistry: error: {root}/index.json is {300 * MB} bytes, over the "
        f"{DEFAULT_INDEX_LIMIT}-byte limit"
    )
    assert elapsed < 20, f"took {elapsed:.1f} s"  # interpreter start-up, mostly
    assert peak_kib < 250 * 1024, f"peak RSS {peak_kib} KiB"  # was over 900 MB


async def test_an_oversized_manifest_blob_is_refused_before_reading(tmp_path: Path) -> None:
    root = layout(tmp_path / "layout")
    digest = Digest.parse("sha256:" + "ab" * 32)
    with (root / "blobs" / "sha256" / digest.hex).open("wb") as f:
        f.truncate(300 * MB)
    started = time.perf_counter()
    with pytest.raises(ManifestTooLarge):
        await LayoutRepository(root).get_manifest(str(digest))
    assert time.perf_counter() - started < 0.1


async def test_fifos_do_not_block_the_reader(tmp_path: Path) -> None:
    root = layout(tmp_path / "layout")
    digest = Digest.parse("sha256:" + "cd" * 32)
    os.mkfifo(root / "blobs" / "sha256" / digest.hex)
    repository = LayoutRepository(root)
    started = time.perf_counter()
    with pytest.raises(LayoutError, match="not a regular file"):
        await repository.get_manifest(str(digest))
    with pytest.raises(LayoutError, match="not a regular file"):
        async for _ in repository.blob_chunks(digest):
            pass
    (root / "index.json").unlink()
    os.mkfifo(root / "index.json")
    with pytest.raises(LayoutError, match=r"cannot read index\.json: not a regular file"):
        await repository.resolve("latest")
    (root / "oci-layout").unlink()
    os.mkfifo(root / "oci-layout")
    with pytest.raises(LayoutError, match="no valid oci-layout file"):
        LayoutRepository(root)
    assert time.perf_counter() - started < 1.0


async def test_a_deeply_nested_index_or_marker_is_an_error(tmp_path: Path) -> None:
    root = layout(tmp_path / "layout")
    (root / "index.json").write_bytes(b'{"schemaVersion":2,"manifests":' + b"[" * 200_000)
    with pytest.raises(LayoutError, match=r"index\.json: .*nested deeper than 64 levels"):
        await LayoutRepository(root).resolve("latest")
    (root / "oci-layout").write_bytes(b"[" * 4000)
    with pytest.raises(LayoutError, match="no valid oci-layout file"):
        LayoutRepository(root)
    (root / "oci-layout").write_bytes(b"\xff" * 10)  # not UTF-8: escaped as UnicodeDecodeError
    with pytest.raises(LayoutError, match="no valid oci-layout file"):
        LayoutRepository(root)
    (root / "oci-layout").write_bytes(b" " * (1 * MB))
    with pytest.raises(LayoutError, match="no valid oci-layout file"):
        LayoutRepository(root)
