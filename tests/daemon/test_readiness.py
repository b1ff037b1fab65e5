"""Readiness that means something: a running server's health is NOT_SERVING while its database
is down (a real PostgreSQL stopped under it) or its migrations are not this version's, SERVING
again once it recovers; the database and decision-log conditions combine; `xregistry health`
says the same with its exit codes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from alembic import command
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.exc import OperationalError

from catalog.api.errors import KIND_KEY
from catalog.api.server import build_server
from catalog.app.config import ServeConfig
from catalog.app.health_config import HealthSettings
from catalog.daemon import Server
from catalog.daemon.readiness import Conditions, database_problem
from catalog.store.db import alembic_config, make_engine
from tests.api.test_server import NOT_SERVING, SERVING, health_check
from tests.harness.ports import free_port
from tests.harness.postgres import run_postgres

GATE = "xregistry.v1.GateService"
FAST = HealthSettings(interval="1s", timeout="2s")
WITHIN = 20.0  # seconds for health to follow the database (probes every second)


async def status(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = await health_check(channel)(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return int(answer.status)


async def wait_for(port: int, wanted: int) -> float:
    """Seconds until the whole server's health is ``wanted`` (fails after WITHIN)."""
    start = time.monotonic()
    while (seen := await status(port)) != wanted:
        assert time.monotonic() - start < WITHIN, f"health stayed {seen}, wanted {wanted}"
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def health_cli(*args: str) -> tuple[int, str, str]:
    """`xregistry health ARGS` in a child process (the server answers on this event loop)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "catalog.cli.main",
        "health",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


@pytest.fixture
async def running(database: str) -> AsyncIterator[Server]:
    service = Server(ServeConfig(database=database, listen="127.0.0.1:0", health=FAST))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.db'}"


async def test_postgresql_stopped_and_restarted_under_a_running_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with run_postgres(tmp_path) as pg:
        database = pg.create_database("ready")
        service = Server(ServeConfig(database=database, listen="127.0.0.1:0", health=FAST))
        await service.start()
        try:
            port = service.port
            await wait_for(port, SERVING)
            code, out, _ = await health_cli("--server", f"127.0.0.1:{port}")
            assert (code, out) == (0, "SERVING\n")

            await asyncio.to_thread(pg.stop)
            down = await wait_for(port, NOT_SERVING)
            code, out, err = await health_cli("--server", f"127.0.0.1:{port}", "-o", "json")
            assert code == 1, err
            assert json.loads(out) == {
                "server": f"127.0.0.1:{port}",
                "service": "",
                "status": "NOT_SERVING",
            }
            assert any(
                "not ready: the database cannot be reached" in r.message for r in caplog.records
            )

            await asyncio.to_thread(pg.restart)
            up = await wait_for(port, SERVING)
            code, out, _ = await health_cli("--server", f"127.0.0.1:{port}")
            assert (code, out) == (0, "SERVING\n")
            # Probes every second with a 2 s timeout.
            assert down < 5, down
            assert up < 5, up
        finally:
            await service.stop()
    # Stopped: nothing answers, exit 7 and one line.
    code, out, err = await health_cli("--server", f"127.0.0.1:{port}", "--timeout", "2")
    assert code == 7
    assert out == ""
    assert err.startswith("xregistry: error: cannot reach the xregistry server at 127.0.0.1:")
    assert err.count("\n") == 1


async def test_migrations_not_this_versions_make_it_not_ready(
    running: Server, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = running.port
    await wait_for(port, SERVING)
    engine = make_engine(database)
    try:
        await asyncio.to_thread(command.downgrade, alembic_config(engine), "-1")
        await wait_for(port, NOT_SERVING)
        assert any("migrations pending" in r.message for r in caplog.records)
        await asyncio.to_thread(command.upgrade, alembic_config(engine), "head")
        await wait_for(port, SERVING)
    finally:
        engine.dispose()


async def test_conditions_combine_per_service() -> None:
    """Both the database and the decision log must be good for the whole server; the gate
    follows the decision log too, and the database only the whole server."""
    server = build_server("127.0.0.1:0", [])
    await server.start()
    try:
        conditions = Conditions(server)

        async def statuses() -> tuple[int, int]:
            return await status(server.port), await status(server.port, GATE)

        await conditions.report("decision log", None, [GATE])
        assert await statuses() == (SERVING, SERVING)
        await conditions.report("database", "down")
        assert await statuses() == (NOT_SERVING, SERVING)
        await conditions.report("decision log", "unwritable", [GATE])
        assert await statuses() == (NOT_SERVING, NOT_SERVING)
        await conditions.report("database", None)
        assert await statuses() == (NOT_SERVING, NOT_SERVING)  # the decision log still
        await conditions.report("decision log", None, [GATE])
        assert await statuses() == (SERVING, SERVING)
    finally:
        await server.stop(grace=None)


async def test_health_cli_unknown_service_and_nothing_listening(running: Server) -> None:
    code, out, err = await health_cli(
        "--server", f"127.0.0.1:{running.port}", "--service", "no.such.Service"
    )
    assert (code, out) == (3, "")
    assert err == (
        f"xregistry: error: the server at 127.0.0.1:{running.port} has no service "
        "'no.such.Service'\n"
    )
    code, _, err = await health_cli("--server", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == 7
    assert err.startswith("xregistry: error: cannot reach"), err


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"])
async def test_health_cli_against_a_peer_that_is_no_grpc_server(answer: bytes) -> None:
    """Silent, or HTTP/1: no answer within --timeout is unreachable (7), one line, promptly."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # kept open: a silent peer never closes
        if answer:
            writer.write(answer)
            await writer.drain()

    peer = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = peer.sockets[0].getsockname()[1]
    try:
        start = time.monotonic()
        code, out, err = await health_cli("--server", f"127.0.0.1:{port}", "--timeout", "1")
        took = time.monotonic() - start
    finally:
        for writer in held:
            writer.close()
        peer.close()
        await peer.wait_closed()
    assert code == 7, err
    assert out == ""
    assert err.startswith("xregistry: error: cannot reach the xregistry server at 127.0.0.1:")
    assert err.count("\n") == 1
    assert took < 15, took  # 1 s for the call; the rest is the interpreter starting


def test_a_database_problem_is_one_bounded_line_of_the_drivers_words() -> None:
    driver = sqlite3.OperationalError("could not connect: " + "x" * 1000 + "\nDETAIL: the rest")
    wrapped = OperationalError("SELECT 1", {}, driver)
    problem = database_problem(wrapped)
    assert problem.startswith("the database cannot be reached: could not connect: xxx")
    assert "\n" not in problem
    assert "SELECT" not in problem
    assert problem.endswith("…")
    assert len(problem) < 400
    assert database_problem(OperationalError("", {}, sqlite3.OperationalError())).endswith(
        ": OperationalError"
    )


class _Refusing(health_pb2_grpc.HealthServicer):
    """A health service that refuses every check with a status and an error kind."""

    def __init__(self, code: grpc.StatusCode, kind: str | None) -> None:
        self.code, self.kind = code, kind

    async def Check(self, request: Any, context: Any) -> Any:
        if self.kind is not None:
            context.set_trailing_metadata(((KIND_KEY, self.kind),))
        await context.abort(self.code, "refused\nhere")


@pytest.mark.parametrize(
    ("code", "kind", "exit_code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, None, 2),
        (grpc.StatusCode.FAILED_PRECONDITION, "oci.DigestMismatch", 6),
        (grpc.StatusCode.PERMISSION_DENIED, None, 5),
        (grpc.StatusCode.INTERNAL, None, 1),
    ],
)
async def test_health_cli_exits_as_every_server_command_does(
    code: grpc.StatusCode, kind: str | None, exit_code: int
) -> None:
    """The status and relayed error kind mapped as for any --server call (README's table)."""
    peer = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(_Refusing(code, kind), peer)
    port = peer.add_insecure_port("127.0.0.1:0")
    await peer.start()
    try:
        got, out, err = await health_cli("--server", f"127.0.0.1:{port}")
    finally:
        await peer.stop(grace=None)
    assert (got, out) == (exit_code, ""), err
    assert err == "xregistry: error: refused here\n"
