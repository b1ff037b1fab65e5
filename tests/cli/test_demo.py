"""`scripts/demo`, the README's first command, does its whole job."""

from __future__ import annotations

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
