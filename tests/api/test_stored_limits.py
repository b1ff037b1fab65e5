"""What callers store is capped so that every list of it fits the server's response limit:
the maximum of everything stored through `xregistry serve`'s real server, then a full page of
each list, read with a client that would take any size, and measured against MAX_SEND."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from catalog.api.catalog_servicer import INDEX_ERRORS_PAGE_MAX
from catalog.api.paging import MAX_PAGE_SIZE
from catalog.api.server import MAX_SEND
from catalog.api.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    gate_pb2,
    gate_pb2_grpc,
    replication_pb2_grpc,
)
from catalog.api.v1 import replication_pb2 as rpb
from catalog.app.config import ServeConfig
from catalog.daemon import Server
from catalog.store.models import IndexErrorRecord
from catalog.store.models import Registry as RegistryRecord
from catalog.store.registries import HOST_MAX, PATTERN_MAX, SCHEDULE_MAX
from catalog.trust.policy.stored import POLICIES_PAGE_MAX, SOURCE_BYTES_MAX
from replication.spec import GLOBS_MAX, PATH_MAX, RULE_BYTES_MAX, RULES_PAGE_MAX, TAG_GLOB_MAX
from tests.signing import key_policy

WIDE = "\U0001f600"  # four bytes in UTF-8: the most a character costs
REASON_MAX = 4000  # catalog.index.crawler cuts index error reasons here


@dataclass
class Stubs:
    catalog: catalog_pb2_grpc.CatalogServiceAsyncStub
    gate: gate_pb2_grpc.GateServiceAsyncStub
    replication: replication_pb2_grpc.ReplicationServiceAsyncStub
    audit: audit_pb2_grpc.AuditServiceAsyncStub
    service: Server


@pytest.fixture
async def stubs(tmp_path: Path) -> AsyncIterator[Stubs]:
    config = ServeConfig(database=f"sqlite:///{tmp_path / 'catalog.db'}", listen="127.0.0.1:0")
    service = Server(config)
    await service.start()
    try:
        # This client takes any size, so only the server's limit can refuse an answer.
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{service.port}", options=[("grpc.max_receive_message_length", -1)]
        ) as channel:
            yield Stubs(
                catalog_pb2_grpc.CatalogServiceStub(channel),
                gate_pb2_grpc.GateServiceStub(channel),
                replication_pb2_grpc.ReplicationServiceStub(channel),
                audit_pb2_grpc.AuditServiceStub(channel),
                service,
            )
    finally:
        await service.stop()


def longest_host(index: int) -> str:
    """A valid ``host:port`` of exactly HOST_MAX characters."""
    port = ":5000"
    labels = [f"h{index:05d}" + "a" * 57, *(["b" * 63] * 2)]
    head = ".".join(labels)
    rest = HOST_MAX - len(port) - len(head) - 1
    return f"{head}.{'c' * rest}{port}"


def registry_id(index: int) -> str:
    return f"r{index:04d}-" + "x" * (63 - 6)


async def in_batches(call: Callable[[int], Awaitable[object]], count: int) -> None:
    """``call(i)`` for each ``i`` below ``count``, 50 in flight at a time: a gRPC call starts
    when it is made (the server refuses a caller's 65th at once)."""
    for start in range(0, count, 50):
        await asyncio.gather(*(call(i) for i in range(start, min(start + 50, count))))


async def test_a_full_page_of_everything_at_its_caps_fits(stubs: Stubs) -> None:
    started = time.monotonic()
    # Registries: MAX_PAGE_SIZE of them, every stored field at its cap.
    schedule = "cron:" + "0" + " " * (SCHEDULE_MAX - len("cron:0 * * * *")) + " * * * *"
    assert len(schedule) == SCHEDULE_MAX
    await in_batches(
        lambda i: stubs.catalog.CreateRegistry(
            catalog_pb2.CreateRegistryRequest(
                registry_id=registry_id(i),
                registry=catalog_pb2.Registry(host=longest_host(i), index_schedule=schedule),
            )
        ),
        MAX_PAGE_SIZE,
    )
    registries = await stubs.catalog.ListRegistries(
        catalog_pb2.ListRegistriesRequest(page_size=MAX_PAGE_SIZE)
    )
    assert len(registries.registries) == MAX_PAGE_SIZE

    # Rules: RULES_PAGE_MAX of them at every cap (wide characters where a pattern takes them).
    rule = rpb.Rule(
        source=f"registries/{registry_id(0)}",
        destination=f"registries/{registry_id(1)}",
        include=[f"i{n:02d}/" + "a" * (PATTERN_MAX - 4) for n in range(GLOBS_MAX)],
        exclude=[f"e{n:02d}/" + "b" * (PATTERN_MAX - 4) for n in range(GLOBS_MAX)],
        prefix="p/" + "q" * (PATH_MAX - 2),
        tags=rpb.TagFilter(
            globs=[f"t{n:02d}" + "c" * (TAG_GLOB_MAX - 3) for n in range(GLOBS_MAX)],
            regex="(" + WIDE * 240 + ")?",
        ),
        schedule=rpb.Schedule(interval="1h"),
    )
    await in_batches(
        lambda i: stubs.replication.CreateRule(
            rpb.CreateRuleRequest(rule_id=f"rule{i:03d}-" + "z" * 55, rule=rule)
        ),
        RULES_PAGE_MAX,
    )
    rules = await stubs.replication.ListRules(rpb.ListRulesRequest(page_size=MAX_PAGE_SIZE))
    assert len(rules.rules) == RULES_PAGE_MAX
    assert rules.next_page_token == ""
    rule_bytes = rules.rules[0].ByteSize()

    # Policies: POLICIES_PAGE_MAX of them, each source at its cap in wide characters.
    policy = key_policy("hub.test:5000", ec.generate_private_key(ec.SECP256R1())) + "# "
    policy += WIDE * ((SOURCE_BYTES_MAX - len(policy.encode())) // 4)
    policy += "x" * (SOURCE_BYTES_MAX - len(policy.encode()))
    assert len(policy.encode()) == SOURCE_BYTES_MAX
    for i in range(POLICIES_PAGE_MAX + 1):
        await stubs.gate.ApplyPolicy(
            gate_pb2.ApplyPolicyRequest(
                policy=gate_pb2.Policy(name=f"policies/p{i:02d}-" + "y" * 59, source=policy)
            )
        )
    policies = await stubs.gate.ListPolicies(gate_pb2.ListPoliciesRequest(page_size=1000))
    assert len(policies.policies) == POLICIES_PAGE_MAX
    assert policies.next_page_token

    # Index errors come from registries, not callers: the longest reason the crawler keeps
    # (4,000 characters), in wide characters, stored one past a full page.
    with stubs.service.sessions.begin() as session:
        owner = session.scalars(select(RegistryRecord).limit(1)).one()
        session.add_all(
            IndexErrorRecord(
                registry_id=owner.id,
                repository="r" * 255,
                reference="t" * 255,
                reason=WIDE * REASON_MAX,
            )
            for _ in range(INDEX_ERRORS_PAGE_MAX + 1)
        )
    index_errors = await stubs.catalog.ListIndexErrors(
        catalog_pb2.ListIndexErrorsRequest(parent=f"registries/{owner.name}", page_size=1000)
    )
    assert len(index_errors.index_errors) == INDEX_ERRORS_PAGE_MAX
    assert index_errors.next_page_token

    events = await stubs.audit.ListAuditEvents(
        audit_pb2.ListAuditEventsRequest(page_size=MAX_PAGE_SIZE)
    )
    assert len(events.audit_events) == MAX_PAGE_SIZE

    sizes = {
        "registries": registries.ByteSize(),
        "rules": rules.ByteSize(),
        "policies": policies.ByteSize(),
        "audit events": events.ByteSize(),
        "index errors": index_errors.ByteSize(),
    }
    print(f"\npages in bytes: {sizes}, one rule {rule_bytes}; {time.monotonic() - started:.1f} s")
    for what, size in sizes.items():
        assert size < MAX_SEND, what
    # A rule is bounded by RULE_BYTES_MAX however its characters are chosen.
    assert RULES_PAGE_MAX * (RULE_BYTES_MAX + 1024) < MAX_SEND


async def test_what_is_over_a_cap_is_refused_unstored(stubs: Stubs) -> None:
    for host in ("a" * 300 + ":5000",):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stubs.catalog.CreateRegistry(
                catalog_pb2.CreateRegistryRequest(
                    registry_id="big", registry=catalog_pb2.Registry(host=host)
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for name in ("a", "b"):
        await stubs.catalog.CreateRegistry(
            catalog_pb2.CreateRegistryRequest(
                registry_id=name, registry=catalog_pb2.Registry(host=f"{name}.test:5000")
            )
        )
    base = rpb.Rule(source="registries/a", destination="registries/b")
    too_big = [
        rpb.Rule(include=["a" * (PATTERN_MAX + 1)]),
        rpb.Rule(exclude=["x"] * (GLOBS_MAX + 1)),
        rpb.Rule(prefix="p" * (PATH_MAX + 1)),
        rpb.Rule(tags=rpb.TagFilter(globs=["t" * (TAG_GLOB_MAX + 1)])),
        rpb.Rule(tags=rpb.TagFilter(regex="a" * 1025)),
        # every field under its cap, the whole over RULE_BYTES_MAX in wide characters
        rpb.Rule(
            include=[WIDE * 200 for _ in range(GLOBS_MAX)],
            tags=rpb.TagFilter(regex="(" + WIDE * 1000 + ")?"),
        ),
    ]
    for extra in too_big:
        rule = rpb.Rule()
        rule.CopyFrom(base)
        rule.MergeFrom(extra)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stubs.replication.CreateRule(rpb.CreateRuleRequest(rule_id="r", rule=rule))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, extra
        assert (err.value.details() or "").startswith("replication rule: "), extra
    source = key_policy("hub.test:5000", ec.generate_private_key(ec.SECP256R1()))
    source += "# " + "x" * SOURCE_BYTES_MAX
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stubs.gate.ApplyPolicy(
            gate_pb2.ApplyPolicyRequest(policy=gate_pb2.Policy(name="policies/p", source=source))
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"over the limit of {SOURCE_BYTES_MAX}" in (err.value.details() or "")
    listed = await stubs.replication.ListRules(rpb.ListRulesRequest())
    assert not listed.rules
