"""The plain-text health-only listener (`health.listen`) beside a TLS API: probes that speak no
TLS (Kubernetes' grpc probes) get the server's health, and nothing else is reachable there."""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.app.config import ServeConfig
from catalog.app.health_config import HealthSettings
from catalog.daemon import Server
from tests.api.peer import make_pki
from tests.api.test_server import health_check


async def test_health_answers_in_plain_text_and_nothing_else_does(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    config = ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        tls=pki.settings(),
        health=HealthSettings(listen="127.0.0.1:0"),
    )
    service = Server(config)
    await service.start()
    try:
        assert service.health_port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.health_port}") as channel:
            answer = await health_check(channel)(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await catalog.ListRegistries(catalog_pb2.ListRegistriesRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # The API port itself still speaks TLS only.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health_check(plain)(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await service.stop()
    # Stopping the server drains the probes' listener too.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.health_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await health_check(channel)(health_pb2.HealthCheckRequest(service=""), timeout=2)
