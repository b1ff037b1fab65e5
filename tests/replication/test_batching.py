"""The outcome batcher: what is submitted together is saved together, off the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from replication.batching import Batcher


class Refused(Exception):
    pass


async def test_items_submitted_together_share_one_save() -> None:
    batches: list[list[int]] = []
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def save(items: list[int]) -> list[int]:
        threads.append(threading.get_ident())
        batches.append(items)
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(save)
    assert await asyncio.gather(*(batcher.submit(n) for n in (1, 2, 3))) == [10, 20, 30]
    assert batches == [[1, 2, 3]]
    assert loop_thread not in threads  # saved off the event loop


async def test_items_submitted_during_a_save_go_into_the_next() -> None:
    batches: list[list[str]] = []
    saving = threading.Event()
    release = threading.Event()

    def save(items: list[str]) -> list[str]:
        batches.append(items)
        saving.set()
        release.wait(5)
        return [item.upper() for item in items]

    batcher: Batcher[str, str] = Batcher(save)
    first = asyncio.create_task(batcher.submit("a"))
    await asyncio.to_thread(saving.wait, 5)
    later = [asyncio.create_task(batcher.submit(item)) for item in ("b", "c")]
    await asyncio.sleep(0)
    release.set()
    assert (await first, await later[0], await later[1]) == ("A", "B", "C")
    assert batches == [["a"], ["b", "c"]]


async def test_a_failed_save_fails_its_batch_only() -> None:
    calls = 0

    def save(items: list[int]) -> list[bool]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Refused("database away")
        return [True for _ in items]

    batcher: Batcher[int, bool] = Batcher(save)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert [type(r) for r in results] == [Refused, Refused]
    assert await batcher.submit(3) is True


async def test_drain_waits_for_the_batch_in_flight() -> None:
    release = threading.Event()
    saved: list[int] = []

    def save(items: list[int]) -> list[None]:
        release.wait(5)
        saved.extend(items)
        return [None for _ in items]

    batcher: Batcher[int, None] = Batcher(save)
    submitter = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    submitter.cancel()  # a task cancelled while its outcome is saved: the save goes on
    draining = asyncio.create_task(batcher.drain())
    await asyncio.sleep(0.05)
    assert not draining.done()
    release.set()
    await draining
    assert saved == [1]
    with pytest.raises(asyncio.CancelledError):
        await submitter
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_drain_with_nothing_submitted() -> None:
    batcher: Batcher[int, int] = Batcher(lambda items: items)
    await batcher.drain()
