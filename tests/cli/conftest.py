"""A running ``xregistry serve`` for the CLI's tests, started as users start it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_catalog_cli import run
from tests.harness.ports import free_port
from tests.harness.registry import RunningRegistry


@pytest.fixture
def server(fresh_registry: RunningRegistry, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'served.db'}\n"
        f"listen: 127.0.0.1:{port}\n"
        f"registries:\n  - name: local\n    host: {fresh_registry.host}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli.main", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while run("registry", "list", server=address).returncode != 0:
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "xregistry serve did not come up"
        time.sleep(0.2)
    yield address
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output  # graceful: SIGTERM is a clean stop
    assert "shutting down" in output
