"""The README's "Using it" block, run as written on a fresh catalog against real registries.

Only the registries' ports are substituted (``localhost:5000`` and ``localhost:5001``). The block
runs in a fresh directory holding ``examples`` (a link to the repository's), so relative paths
and the default catalog (``xregistry.db`` in the working directory) mean what they mean at the
repository's root, and nothing is written there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.registry import RunningRegistry, run_registry

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:e0a0a765d690a5104331cfbac88ebbbf01736c1f87aaa3cd455c516a5ea586a5"


def using_it() -> list[str]:
    """The commands of the README's "Using it" section (its first ``sh`` block), one per item."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the Using it section has no sh block"
    return [line for line in block.group(1).replace("\\\n", " ").splitlines() if line.strip()]


@pytest.fixture
def second_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path) as reg:
        yield reg


def test_using_it_runs_as_written(
    fresh_registry: RunningRegistry, second_registry: RunningRegistry, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    ports = {
        "localhost:5000": f"localhost:{fresh_registry.host.rsplit(':', 1)[1]}",
        "localhost:5001": f"localhost:{second_registry.host.rsplit(':', 1)[1]}",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("XREGISTRY_")}
    # `xregistry` as the README's Getting started puts it on the PATH: the venv's bin.
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env["HOME"] = str(tmp_path)  # no docker config.json of the machine's
    outputs: dict[str, str] = {}
    commands = using_it()
    assert len(commands) >= 20
    for line in commands:
        command = line
        for written, real in ports.items():
            command = command.replace(written, real)
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        outputs[line.split("#", 1)[0].strip()] = done.stdout
    assert (work / "xregistry.db").is_file()

    def output(prefix: str) -> str:
        (found,) = [out for cmd, out in outputs.items() if cmd.startswith(prefix)]
        return found

    # The answers the comments promise.
    assert "builder id" in output("xregistry artifact show")
    assert DIGEST in output("xregistry find pkg:")
    assert "ALLOWED" in output("xregistry verify")
    assert output("xregistry manifest").split()[0] == DIGEST.removeprefix("sha256:")
    platform_digest = output("xregistry digest").strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", platform_digest)
    assert platform_digest != DIGEST
    assert "sbom" in output("xregistry tree")
    assert "attestation" in output("xregistry tree")
    fallback = "sha256-" + DIGEST.removeprefix("sha256:")  # the referrers fallback tag
    assert output("xregistry tags").split() == [fallback, f"{fallback}.att", "v1"]
    assert "succeeded" in output("xregistry replicate run")
