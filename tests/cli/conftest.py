"""A running ``xregistry serve`` for the CLI's tests, started as users start it."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.ports import announced_port
from tests.harness.registry import RunningRegistry


@pytest.fixture
def server(fresh_registry: RunningRegistry, tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'served.db'}\n"
        "listen: 127.0.0.1:0\n"
        f"registries:\n  - name: local\n    host: {fresh_registry.host}\n"
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "catalog.cli.main", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    address = f"127.0.0.1:{announced_port(log, process, timeout=20)}"
    yield address
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    output = log.read_text()
    assert process.returncode == 0, output  # graceful: SIGTERM is a clean stop
    assert "shutting down" in output
