"""Claims: one owner per key, the others wait for its result, results kept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

import pytest

from catalog.claims import Claims, Held


class Boom(Exception):
    pass


async def _made(
    claims: Claims[str, int],
    key: str,
    make: Callable[[], Awaitable[int]],
    owners: list[str] | None = None,
    name: str = "",
) -> int:
    async with claims.hold(key) as held:
        if held.owner:
            if owners is not None:
                owners.append(name)
            held.set(await make())
        return held.value


async def _tick() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _no_other_tasks() -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_concurrent_callers_share_one_result() -> None:
    claims: Claims[str, int] = Claims()
    calls = 0
    release = asyncio.Event()

    async def make() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    callers = [asyncio.create_task(_made(claims, "k", make)) for _ in range(5)]
    await _tick()
    release.set()
    assert await asyncio.gather(*callers) == [42] * 5
    assert calls == 1
    assert await _made(claims, "k", make) == 42  # kept
    assert calls == 1
    _no_other_tasks()


async def test_keys_are_independent() -> None:
    claims: Claims[str, int] = Claims()
    started: list[str] = []
    release = asyncio.Event()

    async def make(key: str) -> int:
        started.append(key)
        await release.wait()
        return len(key)

    a = asyncio.create_task(_made(claims, "a", lambda: make("a")))
    bb = asyncio.create_task(_made(claims, "bb", lambda: make("bb")))
    await _tick()
    assert sorted(started) == ["a", "bb"]  # neither waits for the other
    release.set()
    assert (await a, await bb) == (1, 2)


async def test_cancelled_owner_hands_the_key_to_a_waiter() -> None:
    claims: Claims[str, int] = Claims()
    owners: list[str] = []
    never = asyncio.Event()

    async def stuck() -> int:
        await never.wait()
        return 0

    async def quick() -> int:
        return 7

    first = asyncio.create_task(_made(claims, "k", stuck, owners, "first"))
    await _tick()
    second = asyncio.create_task(_made(claims, "k", quick, owners, "second"))
    await _tick()
    assert owners == ["first"]
    first.cancel()
    assert await second == 7
    assert owners == ["first", "second"]
    with pytest.raises(asyncio.CancelledError):
        await first
    _no_other_tasks()


@pytest.mark.parametrize("failures", ["raise", "retry"])
async def test_cancelled_waiter_leaves_the_owner_alone(
    failures: Literal["raise", "retry"],
) -> None:
    claims: Claims[str, int] = Claims(failures=failures)
    release = asyncio.Event()

    async def make() -> int:
        await release.wait()
        return 1

    owner = asyncio.create_task(_made(claims, "k", make))
    await _tick()
    waiter = asyncio.create_task(_made(claims, "k", make))
    await _tick()
    waiter.cancel()
    await _tick()
    release.set()
    assert await owner == 1
    assert waiter.cancelled()


async def test_failure_reaches_the_waiters_and_the_next_caller_tries_again() -> None:
    claims: Claims[str, int] = Claims(failures="raise")
    release = asyncio.Event()
    owners: list[str] = []

    async def failing() -> int:
        await release.wait()
        raise Boom("listing refused")

    async def working() -> int:
        return 3

    owner = asyncio.create_task(_made(claims, "k", failing, owners, "owner"))
    await _tick()
    waiters = [asyncio.create_task(_made(claims, "k", working, owners, "w")) for _ in range(3)]
    await _tick()
    release.set()
    results = await asyncio.gather(owner, *waiters, return_exceptions=True)
    assert all(isinstance(r, Boom) and str(r) == "listing refused" for r in results)
    assert owners == ["owner"]
    assert await _made(claims, "k", working, owners, "later") == 3
    assert owners == ["owner", "later"]


async def test_failure_lets_a_waiter_take_over_when_retrying() -> None:
    claims: Claims[str, int] = Claims(failures="retry")
    release = asyncio.Event()
    owners: list[str] = []

    async def failing() -> int:
        await release.wait()
        raise Boom("upload refused")

    async def working() -> int:
        return 5

    owner = asyncio.create_task(_made(claims, "k", failing, owners, "owner"))
    await _tick()
    waiters = [asyncio.create_task(_made(claims, "k", working, owners, "w")) for _ in range(3)]
    await _tick()
    release.set()
    with pytest.raises(Boom):
        await owner
    assert await asyncio.gather(*waiters) == [5, 5, 5]
    assert owners == ["owner", "w"]  # one waiter took over; the others got its result
    _no_other_tasks()


async def test_owner_leaving_without_a_result_is_a_failure() -> None:
    claims: Claims[str, int] = Claims()
    with pytest.raises(RuntimeError, match="without a result"):
        async with claims.hold("k"):
            pass
    assert await _made(claims, "k", _seven) == 7


async def _seven() -> int:
    return 7


async def test_put_and_forget() -> None:
    claims: Claims[str, int] = Claims()
    claims.put("k", 1)
    assert await _made(claims, "k", _seven) == 1
    claims.forget("k")
    assert await _made(claims, "k", _seven) == 7


async def test_forgotten_while_held_the_waiters_still_get_the_result() -> None:
    claims: Claims[str, int] = Claims()
    release = asyncio.Event()

    async def make() -> int:
        await release.wait()
        return 9

    owner = asyncio.create_task(_made(claims, "k", make))
    await _tick()
    waiter = asyncio.create_task(_made(claims, "k", make))
    await _tick()
    claims.forget("k")
    release.set()
    assert (await owner, await waiter) == (9, 9)
    assert await _made(claims, "k", _seven) == 7  # not kept: it was forgotten


async def test_put_while_held_wins() -> None:
    claims: Claims[str, int] = Claims()
    release = asyncio.Event()

    async def make() -> int:
        await release.wait()
        return 9

    owner = asyncio.create_task(_made(claims, "k", make))
    await _tick()
    claims.put("k", 1)
    release.set()
    assert await owner == 9
    assert await _made(claims, "k", _seven) == 1


async def test_succeeded_waits_for_that_holder_only() -> None:
    claims: Claims[str, int] = Claims(failures="retry")
    holds: list[Held[int]] = []
    release = asyncio.Event()

    async def owner(result: int | None) -> None:
        async with claims.hold("k") as held:
            holds.append(held)
            await release.wait()
            if result is None:
                raise Boom("refused")
            held.set(result)

    failing = asyncio.create_task(owner(None))
    await _tick()
    watcher = asyncio.create_task(holds[0].succeeded())
    await _tick()
    assert not watcher.done()
    release.set()
    with pytest.raises(Boom):
        await failing
    assert await watcher is False
    await owner(4)
    assert await holds[1].succeeded() is True


async def test_only_the_owner_sets() -> None:
    claims: Claims[str, int] = Claims()
    claims.put("k", 1)
    async with claims.hold("k") as held:
        assert not held.owner
        with pytest.raises(RuntimeError):
            held.set(2)
    async with claims.hold("j") as held:
        with pytest.raises(RuntimeError, match="no result yet"):
            _ = held.value
        held.set(3)
