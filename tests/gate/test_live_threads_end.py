"""A stopped server leaves no thread of its live look-ups behind: a process that starts and
stops servers (a test run, an embedding) would otherwise keep each one's idle threads."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.api.v1 import gate_pb2, gate_pb2_grpc
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from tests.harness.polling import until
from tests.hostile.registry_fakes import Request, send, serve
from tests.signing import key_policy


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("gate-live")}


async def test_a_stopped_server_ends_its_live_look_ups_threads(tmp_path: Path) -> None:
    async def unknown(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 404)

    before = _live_threads()  # other gates' in this process (a CLI's is never closed)
    with serve(unknown) as fake:
        config = ServeConfig(
            database=f"sqlite:///{tmp_path / 'catalog.db'}",
            listen="127.0.0.1:0",
            registries=[RegistryConfig(name="fake", host=fake.host)],
        )
        server = Server(config)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                gate: gate_pb2_grpc.GateServiceAsyncStub = gate_pb2_grpc.GateServiceStub(channel)
                source = key_policy(fake.host, ec.generate_private_key(ec.SECP256R1()))
                policy = gate_pb2.Policy(name="policies/default", source=source)
                await gate.ApplyPolicy(gate_pb2.ApplyPolicyRequest(policy=policy))
                with pytest.raises(grpc.aio.AioRpcError) as unknown_tag:
                    await gate.CheckImage(
                        gate_pb2.CheckImageRequest(
                            image=f"{fake.host}/shop/app:1.0", resolve_live=True
                        )
                    )
            assert unknown_tag.value.code() == grpc.StatusCode.NOT_FOUND
            made = _live_threads() - before
            assert made  # the look-up ran on the gate's own threads
        finally:
            await server.stop()
    await until(lambda: not any(t.is_alive() for t in made), "the live threads to end", 5)
