"""`scripts/demo`, the README's first command, does its whole job."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_demo_indexes_replicates_and_answers(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "run 1: succeeded: 2 image(s)" in out
    assert "digests unchanged" in out
    # The mirror's index finds only content the catalog knew: the digests did not change.
    assert "new to the catalog: 0 manifests" in out
    assert "mirror/mirror/demo/slsa-container:latest,v1" in out
    assert "demo/demo/slsa-container:latest,v1" in out
    assert (tmp_path / "xregistry-demo.db").is_file()
    # The gate: the example policy is applied and the image verified with Sigstore.
    assert "policy default stored as version 1" in out
    assert "ALLOWED:" in out
    assert "slsa-github-generator" in out
    # The closing hint works as printed, from another directory, with a bare PATH.
    hint = out.rstrip().splitlines()[-1]
    asked = subprocess.run(
        shlex.split(hint),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert asked.returncode == 0, asked.stderr
    assert "sha256:e0a0a765d690a5104331cfbac88ebbbf01736c1f87aaa3cd455c516a5ea586a5" in asked.stdout


def test_demo_help_prints_help_and_runs_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: scripts/demo")
    assert not (tmp_path / "xregistry-demo.db").exists()
