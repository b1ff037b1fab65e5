"""A running ``xregistry serve`` for the CLI's tests, started as users start it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.registry import RunningRegistry
from tests.harness.serve_process import ServeProcess


@pytest.fixture
def server(fresh_registry: RunningRegistry, tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'served.db'}\n"
        f"registries:\n  - name: local\n    host: {fresh_registry.host}\n"
    )
    serve = ServeProcess(config, tmp_path / "serve.log")
    serve.start(timeout=20)
    try:
        yield f"127.0.0.1:{serve.port}"
    finally:
        serve.stop()
    assert serve.process is not None
    assert serve.process.returncode == 0, serve.output()  # graceful: SIGTERM is a clean stop
    assert "shutting down" in serve.output()
