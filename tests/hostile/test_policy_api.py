"""Hostile policies over the API of a real server: a deeply nested YAML and a regex RE2 refuses
are INVALID_ARGUMENT with the line and the reason, within a second (the nested YAML was a
RecursionError → INTERNAL); the server keeps answering health checks meanwhile."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2

from catalog.api.v1 import gate_pb2, gate_pb2_grpc
from catalog.app.config import ServeConfig
from catalog.daemon import Server
from tests.api.test_server import health_check


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[grpc.aio.Channel]:
    service = Server(ServeConfig(database=f"sqlite:///{tmp_path / 'c.db'}", listen="127.0.0.1:0"))
    await service.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as opened:
            yield opened
    finally:
        await service.stop()


POLICIES = {
    "deep": ("[" * 200_000, "policy deep:1: nested deeper than 64 levels"),
    "lookahead": (
        'name: x\nimages: ["**"]\nauthorities:\n  - name: a\n    keyless:\n      issuer: i\n'
        "      subjectRegExp: '(?=.*@acme\\.com).*'\n",
        "authorities[0].keyless.subjectRegExp: bad regular expression '(?=.*@acme\\\\.com).*': "
        "invalid perl operator: (?= (RE2 syntax: no backreferences or look-around)",
    ),
}


@pytest.mark.timing
@pytest.mark.parametrize(("source", "reason"), POLICIES.values(), ids=list(POLICIES))
async def test_hostile_policies_are_invalid_arguments(
    channel: grpc.aio.Channel, source: str, reason: str
) -> None:
    gate = gate_pb2_grpc.GateServiceStub(channel)
    policy = gate_pb2.Policy(name="policies/deep", source=source)
    started = time.perf_counter()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gate.ApplyPolicy(gate_pb2.ApplyPolicyRequest(policy=policy), timeout=10)
    elapsed = time.perf_counter() - started
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert reason in (caught.value.details() or ""), caught.value.details()
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    answer = await health_check(channel)(health_pb2.HealthCheckRequest(), timeout=2)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
