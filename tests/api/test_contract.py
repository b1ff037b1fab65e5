"""The published contract kept, through `xregistry serve`'s real server: lists in the documented
order and paged by keyset, ListPolicies paged, a registry's index status as it is (FAILED when
its registry cannot be indexed, in the API and in `registry list` alike), malformed names."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.api.v1 import catalog_pb2 as pb
from catalog.api.v1 import catalog_pb2_grpc, gate_pb2, gate_pb2_grpc
from catalog.app.config import ServeConfig
from catalog.daemon import Server
from catalog.store.models import IndexErrorRecord
from catalog.store.registries import INTERRUPTED, get_registry, index_started, repository
from tests.cli.test_catalog_cli import ok, run
from tests.harness.faultproxy import FaultProxy
from tests.harness.registry import RunningRegistry, run_registry
from tests.signing import key_policy


@dataclass
class Served:
    service: Server
    address: str
    catalog: catalog_pb2_grpc.CatalogServiceAsyncStub
    gate: gate_pb2_grpc.GateServiceAsyncStub
    database: Path


def config(database: Path) -> ServeConfig:
    return ServeConfig(database=f"sqlite:///{database}", listen="127.0.0.1:0")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    database = tmp_path / "catalog.db"
    service = Server(config(database))
    await service.start()
    address = f"127.0.0.1:{service.port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            yield Served(
                service,
                address,
                catalog_pb2_grpc.CatalogServiceStub(channel),
                gate_pb2_grpc.GateServiceStub(channel),
                database,
            )
    finally:
        await service.stop()


async def pages(
    call: Callable[[Any], Awaitable[Any]], request: Any, field: str, key: str
) -> list[list[str]]:
    """Every page of a List call, as the ``key`` of each item."""
    found: list[list[str]] = []
    while True:
        answer = await call(request)
        found.append([getattr(item, key) for item in getattr(answer, field)])
        if not answer.next_page_token:
            return found
        request.page_token = answer.next_page_token


async def add_registry(served: Served, registry_id: str, host: str) -> pb.Registry:
    request = pb.CreateRegistryRequest(registry_id=registry_id, registry=pb.Registry(host=host))
    return (await served.catalog.CreateRegistry(request)).registry


async def test_registries_are_listed_by_name_across_pages(served: Served) -> None:
    for name in ("zeta", "alpha", "mid"):
        await add_registry(served, name, f"{name}.test:5000")
    one_each = await pages(
        served.catalog.ListRegistries, pb.ListRegistriesRequest(page_size=1), "registries", "name"
    )
    assert one_each == [["registries/alpha"], ["registries/mid"], ["registries/zeta"]]
    # A registry added behind the cursor does not move the pages ahead of it.
    request = pb.ListRegistriesRequest(page_size=2)
    first = await served.catalog.ListRegistries(request)
    await add_registry(served, "aaa", "aaa.test:5000")
    request.page_token = first.next_page_token
    rest = await served.catalog.ListRegistries(request)
    assert [r.name for r in rest.registries] == ["registries/zeta"]


async def test_repositories_tags_and_index_errors_in_the_documented_order(served: Served) -> None:
    await add_registry(served, "local", "local.test:5000")
    with served.service.sessions.begin() as session:
        registry = get_registry(session, "local")
        for path in ("zeta", "alpha/b", "mid"):
            repository(session, registry.id, path)
        for n in range(3):
            session.add(IndexErrorRecord(registry_id=registry.id, repository=None, reason=f"e{n}"))
    repositories = await pages(
        served.catalog.ListRepositories,
        pb.ListRepositoriesRequest(parent="registries/local", page_size=1),
        "repositories",
        "path",
    )
    assert repositories == [["alpha/b"], ["mid"], ["zeta"]]
    errors = await pages(
        served.catalog.ListIndexErrors,
        pb.ListIndexErrorsRequest(parent="registries/local", page_size=2),
        "index_errors",
        "reason",
    )
    assert errors == [["e2", "e1"], ["e0"]]  # newest first


def policy_source(key: ec.EllipticCurvePrivateKey) -> str:
    return key_policy("local.test:5000", key)


async def test_list_policies_pages(served: Served) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for name in ("zeta", "alpha", "mid"):
        policy = gate_pb2.Policy(name=f"policies/{name}", source=policy_source(key))
        await served.gate.ApplyPolicy(gate_pb2.ApplyPolicyRequest(policy=policy))
    # A second version of one policy set is still one entry, the newest.
    changed = gate_pb2.Policy(
        name="policies/mid", source=policy_source(ec.generate_private_key(ec.SECP256R1()))
    )
    assert (await served.gate.ApplyPolicy(gate_pb2.ApplyPolicyRequest(policy=changed))).created
    request = gate_pb2.ListPoliciesRequest(page_size=1)
    found: list[tuple[str, int]] = []
    tokens = 0
    while True:
        answer = await served.gate.ListPolicies(request)
        assert len(answer.policies) <= 1
        found += [(p.name, p.version) for p in answer.policies]
        if not answer.next_page_token:
            break
        tokens += 1
        request.page_token = answer.next_page_token
    assert found == [("policies/alpha", 1), ("policies/mid", 2), ("policies/zeta", 1)]
    assert tokens == 2
    everything = await served.gate.ListPolicies(gate_pb2.ListPoliciesRequest())
    assert [p.name for p in everything.policies] == [name for name, _ in found]
    assert not everything.next_page_token
    # A token belongs to its method: a ListRegistries token is refused.
    await add_registry(served, "one", "one.test:5000")
    await add_registry(served, "two", "two.test:5000")
    registries = await served.catalog.ListRegistries(pb.ListRegistriesRequest(page_size=1))
    forged = gate_pb2.ListPoliciesRequest(page_token=registries.next_page_token)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.gate.ListPolicies(forged)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def index(served: Served, registry_id: str) -> grpc.StatusCode:
    """Index a registry to the end → the call's status code."""
    try:
        async for _ in served.catalog.IndexRegistry(
            pb.IndexRegistryRequest(name=f"registries/{registry_id}")
        ):
            pass
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def registry_status(served: Served, registry_id: str) -> pb.Registry:
    request = pb.GetRegistryRequest(name=f"registries/{registry_id}")
    return (await served.catalog.GetRegistry(request)).registry


async def listed_words(served: Served) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``registry list -o json`` against the database and against the server."""

    def listing(**where: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(ok(run("registry", "list", "-o", "json", **where)))
        return found

    local = await asyncio.to_thread(listing, db=served.database)
    remote = await asyncio.to_thread(listing, server=served.address)
    return local, remote


async def test_a_registry_that_cannot_be_indexed_says_failed(
    served: Served, tmp_path: Path, fresh_registry: RunningRegistry
) -> None:
    before = datetime.now(UTC)
    # A real registry that refuses the catalog (no credentials), and one that is gone.
    with run_registry(tmp_path, auth="htpasswd") as locked:
        await add_registry(served, "locked", locked.host)
        assert await index(served, "locked") == grpc.StatusCode.PERMISSION_DENIED
    with run_registry(tmp_path) as gone:
        await add_registry(served, "gone", gone.host)
    assert await index(served, "gone") == grpc.StatusCode.UNAVAILABLE
    await add_registry(served, "fine", fresh_registry.host)
    assert await index(served, "fine") == grpc.StatusCode.OK
    await add_registry(served, "never", "never.test:5000")

    for name in ("locked", "gone"):
        failed = await registry_status(served, name)
        assert failed.last_index_status == pb.INDEX_STATUS_FAILED
        assert failed.last_index_error
        assert failed.last_index_start_time.ToDatetime(tzinfo=UTC) >= before.replace(microsecond=0)
        assert failed.last_index_time.ToDatetime() >= failed.last_index_start_time.ToDatetime()
    fine = await registry_status(served, "fine")
    assert (fine.last_index_status, fine.last_index_error, fine.last_index_error_count) == (
        pb.INDEX_STATUS_SUCCEEDED,
        "",
        0,
    )
    never = await registry_status(served, "never")
    assert never.last_index_status == pb.INDEX_STATUS_UNSPECIFIED
    assert not never.HasField("last_index_time")

    # `registry list` says the same, in the same words, on the database and through the server.
    local, remote = await listed_words(served)
    assert local == remote
    statuses = {r["name"]: r["lastIndexStatus"] for r in local}
    assert statuses == {"fine": "succeeded", "gone": "failed", "locked": "failed", "never": None}
    errors = {r["name"]: r["lastIndexError"] for r in local}
    assert errors["gone"] == (await registry_status(served, "gone")).last_index_error

    def table(**where: Any) -> list[str]:
        return sorted(ok(run("registry", "list", **where)).splitlines())

    shown = await asyncio.to_thread(table, db=served.database)
    assert shown == await asyncio.to_thread(table, server=served.address)
    gone_line = next(line for line in shown if line.lstrip(" │|").startswith("gone"))
    assert "failed:" in gone_line


async def test_a_run_left_running_by_a_dead_server_is_failed_at_the_next_start(
    served: Served,
) -> None:
    await add_registry(served, "local", "local.test:5000")
    with served.service.sessions.begin() as session:  # as a server killed mid-run leaves it
        index_started(session, "local", datetime.now(UTC))
    assert (await registry_status(served, "local")).last_index_status == pb.INDEX_STATUS_RUNNING
    restarted = Server(config(served.database))
    try:
        status = await registry_status(served, "local")
        assert status.last_index_status == pb.INDEX_STATUS_FAILED
        assert status.last_index_error == INTERRUPTED
    finally:
        restarted.engine.dispose()


@pytest.mark.parametrize(
    ("method", "field"),
    [
        ("GetRegistry", "name"),
        ("DeleteRegistry", "name"),
        ("ListRepositories", "parent"),
        ("ListIndexErrors", "parent"),
        ("ListTags", "parent"),
        ("ListTagEvents", "parent"),
        ("GetArtifact", "name"),
        ("ListReferrers", "parent"),
    ],
)
async def test_hostile_names_are_invalid_arguments(served: Served, method: str, field: str) -> None:
    hostile: Sequence[str] = (
        "",
        "registries/local\n",
        "registries/../local",
        "registries/LOCAL",
        "registries/local/",
        "registries/local/repositories/..%2Fetc/tags/x",
        "registries/local/repositories/a%00b",
        "registries/local/repositories/a%2",
        "artifacts/sha256:" + "0" * 63,
        "artifacts/sha256:" + "0" * 64 + "/x",
        "policies/local",
        "x" * 5000,
    )
    call = getattr(served.catalog, method)
    request_type = getattr(pb, f"{method}Request")
    for name in hostile:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request_type(**{field: name}))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name


@pytest.mark.parametrize(
    "name", ["", "default", "policies/", "policies/Default", "policies/a/b", "policies/a\n"]
)
async def test_malformed_policy_names_are_invalid_arguments(served: Served, name: str) -> None:
    requests: list[Awaitable[object]] = [
        served.gate.ApplyPolicy(
            gate_pb2.ApplyPolicyRequest(policy=gate_pb2.Policy(name=name, source="x"))
        ),
    ]
    if name:  # empty names the default policy set
        requests.append(
            served.gate.CheckImage(gate_pb2.CheckImageRequest(image="a.test/b:c", policy=name))
        )
    for call in requests:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_index_run_cancelled_midway_says_interrupted(
    served: Served, proxy: FaultProxy
) -> None:
    """The server stopping cancels its runs: their registries must not stay RUNNING."""
    await add_registry(served, "slow", proxy.host)
    proxy.hang(1, 30, match="/v2/_catalog")
    run = asyncio.create_task(served.service.catalog.index("slow"))
    deadline = asyncio.get_running_loop().time() + 10
    while (await registry_status(served, "slow")).last_index_status != pb.INDEX_STATUS_RUNNING:
        assert asyncio.get_running_loop().time() < deadline, "the run never started"
        await asyncio.sleep(0.05)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    status = await registry_status(served, "slow")
    assert (status.last_index_status, status.last_index_error) == (
        pb.INDEX_STATUS_FAILED,
        INTERRUPTED,
    )
    proxy.clear()
    assert await index(served, "slow") == grpc.StatusCode.OK  # the next run starts afresh
    assert (await registry_status(served, "slow")).last_index_status == pb.INDEX_STATUS_SUCCEEDED
