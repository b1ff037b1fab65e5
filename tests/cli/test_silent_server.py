"""A server that goes silent in the middle of a stream does not hold the command forever: past
the idle deadline between messages (catalog.cli.remote.IDLE; the real server sends one at
least every 15 s) it ends with one line and exit 7, as a server that cannot be reached.

A real gRPC server on loopback answers the first message of each stream, then says nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner

from catalog.api.v1 import catalog_pb2, gate_pb2
from catalog.cli import remote
from catalog.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def _silent_after(first: Any) -> Any:
    def behave(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield first.SerializeToString()
        while context.is_active():  # until the client gives up
            time.sleep(0.05)

    return grpc.unary_stream_rpc_method_handler(behave)


_FIRST = {  # what each stream sends before it falls silent
    "/xregistry.v1.CatalogService/IndexRegistry": catalog_pb2.IndexRegistryResponse(),
    "/xregistry.v1.GateService/EvaluateCatalog": gate_pb2.EvaluateCatalogResponse(),
}


class _Silent(grpc.GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> Any:
        first = _FIRST.get(details.method)
        return None if first is None else _silent_after(first)


@pytest.fixture
def silent_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(remote, "IDLE", 1.5)
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([_Silent()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.mark.parametrize(
    "words",
    [("index", "local"), ("policy", "test", str(REPO / "examples" / "policy.yaml"))],
    ids=["index", "policy-test"],
)
def test_a_silent_stream_ends_in_one_line_and_exit_7(
    silent_server: str, words: tuple[str, ...]
) -> None:
    started = time.monotonic()
    done = CliRunner().invoke(main, ["--server", silent_server, *words], prog_name="xregistry")
    took = time.monotonic() - started
    assert done.exit_code == 7, (done.output, done.exception)
    assert done.stderr.endswith(
        f"xregistry: error: the xregistry server at {silent_server} sent nothing for 2 s; "
        "giving up\n"
    )
    assert done.stderr.count("xregistry: error:") == 1
    assert took < 20


def test_a_long_stream_is_watched_by_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A timer per message started a thread per message (100,000 for a large catalog)."""
    import threading

    from catalog.cli.remote import Connection

    def many(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for _ in range(300):
            yield gate_pb2.EvaluateCatalogResponse().SerializeToString()

    class _Many(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> Any:
            return grpc.unary_stream_rpc_method_handler(many)

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([_Many()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    started: list[str] = []
    real_start = threading.Thread.start

    def counting(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    try:
        connection = Connection(f"127.0.0.1:{port}")
        method = connection.channel.unary_stream(
            "/xregistry.v1.GateService/EvaluateCatalog",
            request_serializer=lambda m: m,
            response_deserializer=gate_pb2.EvaluateCatalogResponse.FromString,
        )
        monkeypatch.setattr(threading.Thread, "start", counting)
        assert sum(1 for _ in connection.stream(method, b"")) == 300
    finally:
        monkeypatch.undo()
        server.stop(grace=None)
    # The watcher, and what gRPC starts on its own; not one per message.
    assert len(started) < 10, started[:12]
