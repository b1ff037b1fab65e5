"""``kill -9`` of a serving ``xregistry serve``: the decision log loses at most the last batch
(what was answered in the last moments before the kill), and the index run it had under way is
recorded as interrupted on the registry when serve starts again."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

import grpc
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc, gate_pb2, gate_pb2_grpc
from catalog.oci.client import RegistryClient
from catalog.store.registries import INTERRUPTED
from tests.harness.faultproxy import FaultProxy
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.harness.serve_process import ServeProcess
from tests.pushing import push_built
from tests.signing import key_policy

DECIDING_FOR = 3.0
IN_FLIGHT = 8
# What a kill may lose: the decisions answered in this window before it (the log writes every
# 50 ms; the margin is for a loaded 2-core machine).
LAST_BATCH = 1.0


async def _status(
    catalog: catalog_pb2_grpc.CatalogServiceAsyncStub, name: str
) -> catalog_pb2.Registry:
    request = catalog_pb2.GetRegistryRequest(name=f"registries/{name}")
    return (await catalog.GetRegistry(request)).registry


async def test_kill_9_loses_at_most_the_last_batch_and_marks_the_run_interrupted(
    fresh_registry: RunningRegistry, proxy: FaultProxy, tmp_path: Path, rng: random.Random
) -> None:
    host = fresh_registry.host
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", build_image(rng, layers=1, layer_size=512), "v1")
    database = tmp_path / "catalog.db"
    config = tmp_path / "serve.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{database}",
                "registries": [
                    {"name": "local", "host": host, "insecure": True},
                    {"name": "slow", "host": proxy.host, "insecure": True},
                ],
            }
        )
    )
    serve = ServeProcess(config, tmp_path / "serve.log")
    await asyncio.to_thread(serve.start)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{serve.port}") as channel:
            catalog: catalog_pb2_grpc.CatalogServiceAsyncStub
            catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
            gate = gate_pb2_grpc.GateServiceStub(channel)
            request = catalog_pb2.IndexRegistryRequest(name="registries/local")
            async for _ in catalog.IndexRegistry(request):
                pass
            policy = key_policy(host, ec.generate_private_key(ec.SECP256R1()))
            await gate.ApplyPolicy(
                gate_pb2.ApplyPolicyRequest(
                    policy=gate_pb2.Policy(name="policies/default", source=policy)
                )
            )
            check = gate_pb2.CheckImageRequest(image=f"{host}/shop/app:v1")
            await gate.CheckImage(check)  # decided once: the rest are cached

            # An index run under way at the kill: the slow registry's catalog answers in 60 s.
            proxy.hang(1, 60, match="/v2/_catalog")
            slow = catalog.IndexRegistry(catalog_pb2.IndexRegistryRequest(name="registries/slow"))
            deadline = time.monotonic() + 10
            while (await _status(catalog, "slow")).last_index_status != (
                catalog_pb2.INDEX_STATUS_RUNNING
            ):
                assert time.monotonic() < deadline, "the slow run never started"
                await asyncio.sleep(0.05)

            answered: list[float] = []
            stop_at = time.monotonic() + DECIDING_FOR

            async def decide() -> None:
                while time.monotonic() < stop_at:
                    await gate.CheckImage(check)
                    answered.append(time.monotonic())

            await asyncio.gather(*(decide() for _ in range(IN_FLIGHT)))
            serve.kill()
            killed = time.monotonic()
            slow.cancel()
    finally:
        await asyncio.to_thread(serve.stop)

    with sqlite3.connect(database) as db:
        (rows,) = db.execute("SELECT count(*) FROM decisions").fetchone()
    total = len(answered) + 1  # and the first, uncached one
    lost = total - rows
    last = sum(1 for t in answered if t > killed - LAST_BATCH)
    print(
        f"measured: {total} decisions answered in {DECIDING_FOR:.0f} s, {rows} recorded after "
        f"kill -9: {lost} lost; {last} answered in the last {LAST_BATCH:g} s"
    )
    assert total > 100, "too few decisions to say anything"
    assert 0 <= lost <= last

    # serve starting again records the run the kill cut short.
    proxy.clear()
    serve = ServeProcess(config, tmp_path / "serve-again.log")
    await asyncio.to_thread(serve.start)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{serve.port}") as channel:
            again = catalog_pb2_grpc.CatalogServiceStub(channel)
            status = await _status(again, "slow")
    finally:
        await asyncio.to_thread(serve.stop)
    assert (status.last_index_status, status.last_index_error) == (
        catalog_pb2.INDEX_STATUS_FAILED,
        INTERRUPTED,
    )
    assert "was interrupted" in (tmp_path / "serve-again.log").read_text()
