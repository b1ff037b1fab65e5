"""``xregistry serve`` as a process, on the database $XREGISTRY_DATABASE_URL names (its config
file names another, which must stay untouched)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

PASSWORD = "s3cret-Pw-for-the-test"  # in the URLs the tests give: it must never be shown


def serve(
    tmp_path: Path,
    url: str,
    *args: str,
    listen: str = "127.0.0.1:0",
    before: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``xregistry [BEFORE…] serve --config FILE [ARGS…]``, ended by itself within a minute."""
    config = tmp_path / "xregistry.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'from-config.db'}\nlisten: {listen}\n")
    env = {**os.environ, **(environ or {}), "XREGISTRY_DATABASE_URL": url}
    main = [sys.executable, "-m", "catalog.cli.main", *before]
    command = [*main, "serve", "--config", str(config), *args]
    try:
        return subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"serve did not stop: {exc.stderr!r}")
