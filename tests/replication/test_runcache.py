"""The worker's per-run cache: one build per run, shared by the tasks, dropped when idle."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from catalog.oci.client import RegistryClient
from replication.image import RunState
from replication.rules import Rule
from replication.runcache import RunCache, RunContext
from replication.stores import RegistryStore
from tests.harness.images import build_image
from tests.replication.conftest import Pair, push_to


class Unreachable(Exception):
    pass


class Builds:
    def __init__(self, fail: set[int] | None = None) -> None:
        self.calls: list[int] = []
        self.release = asyncio.Event()
        self.fail = fail or set()

    async def __call__(self, run_id: int) -> str:
        self.calls.append(run_id)
        await self.release.wait()
        if run_id in self.fail:
            self.fail.discard(run_id)  # once
            raise Unreachable(f"run {run_id}: registry away")
        return f"context of {run_id}"


async def test_tasks_of_a_run_share_one_build() -> None:
    build = Builds()
    cache = RunCache(build, idle=60)
    callers = [asyncio.create_task(cache.get(run)) for run in (1, 1, 2, 1)]
    await asyncio.sleep(0)
    build.release.set()
    assert await asyncio.gather(*callers) == [
        "context of 1",
        "context of 1",
        "context of 2",
        "context of 1",
    ]
    assert await cache.get(1) == "context of 1"
    assert sorted(build.calls) == [1, 2]


async def test_a_failed_build_fails_its_waiters_and_is_built_again() -> None:
    build = Builds(fail={1})
    cache = RunCache(build, idle=60)
    callers = [asyncio.create_task(cache.get(1)) for _ in range(3)]
    await asyncio.sleep(0)
    build.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, Unreachable) for r in results)
    assert await cache.get(1) == "context of 1"
    assert build.calls == [1, 1]


async def test_idle_runs_are_evicted_active_ones_kept() -> None:
    build = Builds()
    build.release.set()
    cache = RunCache(build, idle=60)
    for run in (1, 2, 3):
        await cache.get(run)
    cache.evict(active={2}, now=time.monotonic() + 30)  # none idle long enough yet
    cache.evict(active={2}, now=time.monotonic() + 61)
    for run in (1, 2, 3):
        await cache.get(run)
    assert build.calls == [1, 2, 3, 1, 3]  # 2 had a task running: kept


async def test_a_cancelled_builder_hands_the_build_to_a_waiter() -> None:
    build = Builds()
    cache = RunCache(build, idle=60)
    first = asyncio.create_task(cache.get(1))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get(1))
    await asyncio.sleep(0)
    first.cancel()
    build.release.set()
    assert await second == "context of 1"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert build.calls == [1, 1]
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_run_lists_a_repository_once_whatever_the_tasks(
    pair: Pair, rng: random.Random
) -> None:
    await push_to(pair.source.host, "app", build_image(rng, layers=1), "1")
    async with (
        RegistryClient(pair.source_proxy.host) as source,
        RegistryClient(pair.destination.host) as destination,
    ):
        rule = Rule(pair.source_proxy.host, pair.destination.host)
        context = RunContext(
            RunState(rule, RegistryStore(source), RegistryStore(destination)), "test"
        )
        listings = await asyncio.gather(*(context.listing("app") for _ in range(4)))
        context.known("planned", frozenset({"x"}))  # listed by the planner: not asked again
        assert await context.listing("planned") == {"x"}
    assert listings == [frozenset({"1"})] * 4
    assert pair.source_proxy.count("GET", "/tags/list") == 1
