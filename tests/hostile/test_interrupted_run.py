"""An index run that is cancelled (the server stopping) or fails is recorded on the registry
without holding the event loop: the write runs on a worker thread, shielded from a second
cancellation. Before, it was written on the loop, which stood still while the database was
busy (here: write-locked by another connection for 1.5 s)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from catalog.app.catalog_service import CatalogService
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import INTERRUPTED, IndexStatus, RegistrySpec
from tests.hostile.registry_fakes import Request, send_json, serve

LOCKED = 1.5  # seconds another connection holds the database's write lock


async def test_a_cancelled_run_is_recorded_off_the_event_loop(tmp_path: Path) -> None:
    async def slow(req: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(20)
        await send_json(writer, {"repositories": []})

    path = tmp_path / "catalog.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    service = CatalogService(session_factory(engine))
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks.append(time.monotonic())

    with serve(slow) as fake:
        await asyncio.to_thread(service.add_registry, RegistrySpec(name="slow", host=fake.host))
        run = asyncio.create_task(service.index("slow"))
        await asyncio.sleep(0.5)  # the run is waiting for the registry's listing
        locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN EXCLUSIVE")
        threading.Timer(LOCKED, locker.rollback).start()
        ticker = asyncio.create_task(tick())
        began = time.monotonic()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        ended = time.monotonic()
        ticker.cancel()
    locker.close()
    moments = [began, *ticks, ended]
    stall = max(b - a for a, b in itertools.pairwise(moments))
    took = ended - began
    print(f"measured: recorded after {took:.2f} s, longest loop stall {stall * 1000:.0f} ms")
    assert took >= LOCKED - 0.2  # it did wait for the lock...
    assert stall < 0.25  # ...on a thread: the loop kept running
    view = await asyncio.to_thread(service.get_registry, "slow")
    assert view.last_index_status == IndexStatus.FAILED
    assert view.last_index_error == INTERRUPTED
    engine.dispose()
