"""``GET /metrics`` of a real ``serve`` (in process) after real work: an index of a real
registry, gate decisions on signed and unsigned images, a replication run copying to a second
registry, gRPC calls; the values scraped over HTTP move exactly as the work says."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc, gate_pb2, gate_pb2_grpc
from catalog.app.config import RegistryConfig, ReplicationSettings, ServeConfig
from catalog.app.ops_config import MetricsSettings
from catalog.daemon import Server
from catalog.oci.client import RegistryClient
from catalog.trust.policy.stored import Policies
from replication.spec import RuleSpec
from tests.harness.images import BuiltManifest, build_image
from tests.harness.registry import RunningRegistry, run_registry
from tests.ops.scraping import Samples, eventually, moved, scrape, value
from tests.replication.conftest import digest_of, push_to
from tests.replication.test_serve_rules import finished
from tests.signing import key_policy, push_signature

REPLICA = "replica-under-test"


@dataclass
class Registries:
    source: RunningRegistry
    destination: RunningRegistry


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Registries]:
    with run_registry(tmp_path) as source, run_registry(tmp_path) as destination:
        yield Registries(source, destination)


def config(tmp_path: Path, registries: Registries) -> ServeConfig:
    return ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[
            RegistryConfig(name="src", host=registries.source.host, insecure=True),
            RegistryConfig(name="dst", host=registries.destination.host, insecure=True),
        ],
        replication=ReplicationSettings(
            poll="1s",
            rules=[
                RuleSpec(name="gated", source="src", destination="dst", prefix="m", policy="prod")
            ],
        ),
        metrics=MetricsSettings(listen="127.0.0.1:0", replica=REPLICA, refresh="1s"),
    )


def blob_bytes(*manifests: BuiltManifest) -> tuple[int, int]:
    """(bytes, count) of the distinct blobs of ``manifests``."""
    blobs = {blob.digest: blob.size for m in manifests for blob in m.blobs}
    return sum(blobs.values()), len(blobs)


def lag(samples: Samples) -> float | None:
    key = (
        "xregistry_replication_lag_seconds",
        frozenset({("rule", "gated"), ("replica", REPLICA)}),
    )
    return samples.get(key)


async def test_index_gate_replication_and_grpc_work_moves_the_metrics(
    registries: Registries, tmp_path: Path, rng: random.Random
) -> None:
    source = registries.source.host
    key = ec.generate_private_key(ec.SECP256R1())
    signed, unsigned = build_image(rng, layers=2), build_image(rng, layers=1)
    await push_to(source, "shop/api", signed, "1.0")
    await push_to(source, "shop/api", unsigned, "2.0")
    async with RegistryClient(source) as client:
        signature = await push_signature(client, "shop/api", signed.digest, key)
    service = Server(config(tmp_path, registries))
    Policies(service.sessions, service.gate.pki_names).apply("prod", key_policy(source, key))
    await service.start()
    try:
        assert service.metrics.listener is not None
        port = service.metrics.listener.port
        # Per-rule lag is read from the store in the background: never run, the rule is behind.
        first = await eventually(port, lambda s: (lag(s) or 0) > 0)
        assert (
            value(first, "xregistry_replication_pending_changes", rule="gated", replica=REPLICA)
            == 0
        )
        assert value(first, "xregistry_decision_log_queued_decisions", replica=REPLICA) == 0
        assert value(first, "xregistry_db_pool_size_connections", replica=REPLICA) >= 1

        before = await scrape(port)
        await service.index("src")
        indexed = await scrape(port)
        runs = ("xregistry_index_runs_total", {"registry": "src", "outcome": "succeeded"})
        assert moved(before, indexed, runs[0], **runs[1]) == 1
        # the two images and the signature: three manifests, one signature document
        assert moved(before, indexed, "xregistry_index_manifests_total", registry="src") == 3
        assert moved(before, indexed, "xregistry_index_documents_total", registry="src") == 1
        assert moved(before, indexed, "xregistry_index_errors_total", registry="src") == 0
        assert moved(before, indexed, "xregistry_index_duration_seconds_count", registry="src") == 1

        run = service.replication.trigger_run("gated")
        assert run is not None
        assert (await finished(service, run.id)).outcomes == {"copied": 1, "denied": 1}
        assert await digest_of(registries.destination.host, "m/shop/api", "1.0") == signed.digest
        done = await eventually(port, lambda s: lag(s) == 0)
        decisions = "xregistry_gate_decisions_total"
        assert moved(before, done, decisions, policy="prod", outcome="denied") == 1
        assert moved(before, done, decisions, policy="prod", outcome="allowed") == 1
        verified = "xregistry_signature_verifications_total"
        assert moved(before, done, verified, method="key", result="verified") == 1
        assert moved(before, done, "xregistry_gate_cache_lookups_total", result="miss") == 2
        tasks = "xregistry_replication_tasks_total"
        assert moved(before, done, tasks, rule="gated", outcome="copied") == 1
        assert moved(before, done, tasks, rule="gated", outcome="denied") == 1
        # The copied image adds its bytes: its config and layers, and its signature's.
        size, count = blob_bytes(signed, signature)
        copied = "xregistry_replication_copied_bytes_total"
        assert moved(before, done, copied, rule="gated") == size
        assert (
            moved(before, done, "xregistry_replication_copied_blobs_total", rule="gated") == count
        )
        assert moved(before, done, "xregistry_replication_mounted_blobs_total", rule="gated") == 0

        # gRPC: counted by method and final code, an error mapped by the server included.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            gate = gate_pb2_grpc.GateServiceStub(channel)
            ask = gate_pb2.CheckImageRequest(image=f"{source}/shop/api:2.0", policy="policies/prod")
            for _ in range(2):  # the second answer comes from the decision cache
                assert not (await gate.CheckImage(ask)).decision.allowed
            catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await catalog.GetRegistry(catalog_pb2.GetRegistryRequest(name="registries/nowhere"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        called = await scrape(port)
        handled = "xregistry_grpc_handled_total"
        check = "/xregistry.v1.GateService/CheckImage"
        assert moved(done, called, handled, method=check, code="OK") == 2
        get = "/xregistry.v1.CatalogService/GetRegistry"
        assert moved(done, called, handled, method=get, code="NOT_FOUND") == 1
        seconds = "xregistry_grpc_handling_duration_seconds_count"
        assert moved(done, called, seconds, method=check, code="OK") == 2
        lookups = "xregistry_gate_cache_lookups_total"
        assert moved(done, called, lookups, result="miss") == 1
        assert moved(done, called, lookups, result="hit") == 1
        assert moved(done, called, decisions, policy="prod", outcome="denied") == 2
    finally:
        await service.stop()
