"""The audit through `xregistry serve`'s real server: changes made over gRPC and by the serve
configuration, read back with AuditService.ListAuditEvents (filters, pages newest first, tokens
bound to their filters) and with `xregistry --server … audit`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import grpc.aio
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.timestamp_pb2 import Timestamp

from catalog.api.v1 import audit_pb2 as pb
from catalog.api.v1 import audit_pb2_grpc, catalog_pb2, catalog_pb2_grpc, gate_pb2, gate_pb2_grpc
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from tests.cli.test_catalog_cli import assert_recent_utc, ok, run
from tests.signing import key_policy


@dataclass
class Served:
    service: Server
    address: str
    audit: audit_pb2_grpc.AuditServiceAsyncStub
    catalog: catalog_pb2_grpc.CatalogServiceAsyncStub
    gate: gate_pb2_grpc.GateServiceAsyncStub


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    config = ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[RegistryConfig(name="hub", host="hub.test:5000")],
    )
    service = Server(config)
    await service.start()
    address = f"127.0.0.1:{service.port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            yield Served(
                service,
                address,
                audit_pb2_grpc.AuditServiceStub(channel),
                catalog_pb2_grpc.CatalogServiceStub(channel),
                gate_pb2_grpc.GateServiceStub(channel),
            )
    finally:
        await service.stop()


async def listed(served: Served, request: pb.ListAuditEventsRequest) -> list[list[str]]:
    """Every page, as ``principal kind resource`` per event."""
    pages = []
    while True:
        answer = await served.audit.ListAuditEvents(request)
        pages.append(
            [
                f"{e.principal} {pb.AuditEventKind.Name(e.kind)} {e.resource}"
                for e in answer.audit_events
            ]
        )
        if not answer.next_page_token:
            return pages
        request.page_token = answer.next_page_token


async def test_changes_over_grpc_are_listed_with_who_made_them(served: Served) -> None:
    started = datetime.now(UTC)
    policy = key_policy("hub.test:5000", ec.generate_private_key(ec.SECP256R1()))
    await served.gate.ApplyPolicy(
        gate_pb2.ApplyPolicyRequest(policy=gate_pb2.Policy(name="policies/default", source=policy))
    )
    await served.catalog.CreateRegistry(
        catalog_pb2.CreateRegistryRequest(
            registry_id="extra", registry=catalog_pb2.Registry(host="extra.test:5000")
        )
    )
    await served.catalog.DeleteRegistry(catalog_pb2.DeleteRegistryRequest(name="registries/extra"))
    with pytest.raises(grpc.aio.AioRpcError):  # fails: records nothing
        await served.catalog.DeleteRegistry(
            catalog_pb2.DeleteRegistryRequest(name="registries/extra")
        )

    answer = await served.audit.ListAuditEvents(pb.ListAuditEventsRequest())
    found = [(e.principal, e.kind, e.resource) for e in answer.audit_events]
    assert found == [
        ("anonymous:anonymous", pb.AUDIT_EVENT_KIND_REGISTRY_DELETED, "registries/extra"),
        ("anonymous:anonymous", pb.AUDIT_EVENT_KIND_REGISTRY_CREATED, "registries/extra"),
        ("anonymous:anonymous", pb.AUDIT_EVENT_KIND_POLICY_APPLIED, "policies/default"),
        # The serve configuration's registry, added as the server started.
        ("server:xregistry", pb.AUDIT_EVENT_KIND_REGISTRY_CREATED, "registries/hub"),
    ]
    applied = answer.audit_events[2]
    assert (applied.before_version, applied.after_version) == ("", "1")
    assert applied.name.startswith("auditEvents/")
    moment = applied.event_time.ToDatetime(tzinfo=UTC)
    assert started - timedelta(seconds=1) <= moment <= datetime.now(UTC)
    assert not answer.next_page_token

    # Filters, and pages of one newest first with the filter kept.
    anonymous = pb.ListAuditEventsRequest(principal="anonymous:anonymous", page_size=1)
    assert await listed(served, anonymous) == [
        ["anonymous:anonymous AUDIT_EVENT_KIND_REGISTRY_DELETED registries/extra"],
        ["anonymous:anonymous AUDIT_EVENT_KIND_REGISTRY_CREATED registries/extra"],
        ["anonymous:anonymous AUDIT_EVENT_KIND_POLICY_APPLIED policies/default"],
    ]
    created = pb.ListAuditEventsRequest(kind=pb.AUDIT_EVENT_KIND_REGISTRY_CREATED)
    assert [len(page) for page in await listed(served, created)] == [2]
    later = Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(minutes=1))
    assert await listed(served, pb.ListAuditEventsRequest(start_time=later)) == [[]]
    assert len((await listed(served, pb.ListAuditEventsRequest(end_time=later)))[0]) == 4

    # A token belongs to its filters; an unknown kind and a reversed range are refused.
    first = await served.audit.ListAuditEvents(
        pb.ListAuditEventsRequest(principal="anonymous:anonymous", page_size=1)
    )
    assert first.next_page_token
    for bad in (
        pb.ListAuditEventsRequest(page_size=1, page_token=first.next_page_token),
        pb.ListAuditEventsRequest(kind=99),  # type: ignore[arg-type]
        pb.ListAuditEventsRequest(start_time=later, end_time=applied.event_time),
        pb.ListAuditEventsRequest(principal="token:" + "a" * 600),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await served.audit.ListAuditEvents(bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_cli_reads_the_servers_audit(served: Served) -> None:
    await served.catalog.CreateRegistry(
        catalog_pb2.CreateRegistryRequest(
            registry_id="extra", registry=catalog_pb2.Registry(host="extra.test:5000")
        )
    )
    done = await asyncio.to_thread(
        run, "audit", "--principal", "anonymous:anonymous", "-o", "json", server=served.address
    )
    (event,) = json.loads(ok(done))
    assert set(event) == {
        "id",
        "time",
        "principal",
        "kind",
        "resource",
        "before",
        "after",
        "detail",
    }
    assert (event["principal"], event["kind"], event["resource"], event["before"]) == (
        "anonymous:anonymous",
        "registry.created",
        "registries/extra",
        None,
    )
    assert_recent_utc(event["time"])
    created = ok(
        await asyncio.to_thread(
            run,
            "audit",
            "--kind",
            "registry.created",
            "--since",
            "1h",
            "-o",
            "json",
            server=served.address,
        )
    )
    assert [e["resource"] for e in json.loads(created)] == ["registries/extra", "registries/hub"]
    table = ok(await asyncio.to_thread(run, "audit", "--limit", "1", server=served.address))
    assert "principal" in table
    assert "anonymous" in table
    assert "server:xregistry" not in table  # --limit 1: the newest only
    # A reversed range is refused by the server as it is locally: usage, exit 2.
    reversed_range = await asyncio.to_thread(
        run, "audit", "--since", "1h", "--until", "2h", server=served.address
    )
    assert reversed_range.returncode == 2, reversed_range.stderr
