"""A short real ``xregistry serve`` (a subprocess) and every line it writes: JSON with the stable
keys, an index and a failing replication said as they happened (the failure as a failure, with
its reason), a call's request id, no third-party chatter; and the text format's lines."""

from __future__ import annotations

import json
import random
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import yaml

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from tests.harness.images import build_image
from tests.harness.ports import free_port
from tests.harness.registry import RunningRegistry, run_registry
from tests.harness.serve_process import ServeProcess
from tests.replication.conftest import push_to

KEYS = {"time", "level", "logger", "event"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _serve(tmp_path: Path, config: dict[str, Any], *flags: str) -> ServeProcess:
    """``xregistry [FLAGS] serve`` on ``config``, its stderr and stdout in files of their own."""
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    serve = ServeProcess(
        path, tmp_path / "serve.stderr", flags=flags, stdout=tmp_path / "serve.stdout"
    )
    serve.launch()
    return serve


@pytest.fixture
def source(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path) as registry:
        yield registry


def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listened, so connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_every_json_line_has_the_stable_keys_and_failures_are_failures(
    source: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    await push_to(source.host, "shop/api", build_image(rng, layers=1), "1.0")
    nowhere = f"127.0.0.1:{closed_port()}"
    config = {
        "database": f"sqlite:///{tmp_path / 'catalog.db'}",
        "registries": [
            {"name": "src", "host": source.host, "insecure": True, "index": {"interval": "1h"}},
            {"name": "dst", "host": nowhere, "insecure": True},
        ],
        "replication": {
            "poll": "1s",
            "rules": [
                {"name": "to-nowhere", "source": "src", "destination": "dst", "on_index": True}
            ],
        },
        "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        "log": {"format": "text", "level": "WARNING"},  # the flags override both
    }
    serve = _serve(tmp_path, config, "--log-format", "json", "--log-level", "info")
    try:
        serve.wait_listening()
        # the index at start moves a tag: the rule follows, and its run fails on the destination
        serve.wait_for(
            lambda text: any(
                "replication run" in line and " failed: " in line for line in text.splitlines()
            ),
            60,
            "failure",
        )  # the run's own line: a task's "failed" line comes first
        async with grpc.aio.insecure_channel(f"127.0.0.1:{serve.port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            call = stub.IndexRegistry(
                catalog_pb2.IndexRegistryRequest(name="registries/dst"),
                metadata=(("x-request-id", "req-42"), ("authorization", "Bearer s3cret-0123")),
            )
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                async for _ in call:
                    pass
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        serve.wait_for(lambda text: "req-42" in text, 10, "the call's line")
    finally:
        assert serve.stop() == 0
    assert (tmp_path / "serve.stdout").read_text() == ""
    text = serve.output()
    assert "s3cret-0123" not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line, or this fails
    for line in lines:
        assert set(line) >= KEYS, line
        assert TIME.fullmatch(line["time"]), line
        assert line["level"] in ("INFO", "WARNING", "ERROR"), line
        assert not line["logger"].startswith(("apscheduler", "aiohttp", "alembic")), line

    def where(**wanted: Any) -> list[dict[str, Any]]:
        return [line for line in lines if wanted.items() <= line.items()]

    (indexed,) = where(logger="xregistry.serve", registry="src", principal="server:xregistry")
    assert indexed["level"] == "INFO"
    assert indexed["event"] == "indexed src without errors"
    assert (indexed["manifestsNew"], indexed["tagsSeen"], indexed["errors"]) == (1, 1, 0)
    (run,) = where(logger="xregistry.replication", rule="to-nowhere", event=run_failed(lines))
    assert run["level"] == "WARNING"
    assert isinstance(run["run"], int)
    assert nowhere in run["event"]  # the reason: the destination could not be reached
    assert run["failed"] == 1
    assert "repository" not in run  # a run's line is not about its last task's repository
    task = where(logger="xregistry.replication", repository="shop/api", level="WARNING")
    assert any(line.get("rule") == "to-nowhere" and nowhere in line["event"] for line in task)
    assert not [line for line in lines if "finished" in line["event"] and "run" in line]
    (answered,) = where(requestId="req-42")
    assert answered["level"] == "WARNING"
    assert "UNAVAILABLE" in answered["event"]
    assert answered["principal"] == "anonymous:anonymous"
    assert where(event="shutting down")


def run_failed(lines: list[dict[str, Any]]) -> str:
    """The event of the line saying the run failed (its words are checked by the caller)."""
    found = [
        str(line["event"]) for line in lines if str(line["event"]).startswith("replication run")
    ]
    failed = [event for event in found if " failed: " in event]
    assert len(failed) == 1, found
    return failed[0]


def test_text_lines_start_with_time_level_and_logger(tmp_path: Path) -> None:
    config = {"database": f"sqlite:///{tmp_path / 'catalog.db'}", "log": {"format": "text"}}
    serve = _serve(tmp_path, config)
    try:
        serve.wait_listening()
    finally:
        assert serve.stop() == 0
    lines = serve.output().splitlines()
    assert len(lines) >= 3
    start = re.compile(rf"{TIME.pattern} (INFO|WARNING) +[\w.]+: \S")
    for line in lines:
        assert start.match(line), line
    assert any(
        re.search(r"INFO +xregistry\.serve: xregistry serving on port \d+ \(plain text\)", line)
        for line in lines
    )
