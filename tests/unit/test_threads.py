"""Work handed to the loop's shared pool runs on the threads of the work it belongs to, when
that work brought some (the gate's live look-ups do), else on the pool."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from catalog.app.config import ServeConfig
from catalog.daemon.process import Server
from catalog.daemon.shared_pool import SharedPool
from catalog.threads import running_on


def _name() -> str:
    return threading.current_thread().name


async def _where(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Where each way of handing work to the loop's default executor runs it."""
    return [
        await asyncio.to_thread(_name),
        await loop.run_in_executor(None, _name),
        await asyncio.ensure_future(asyncio.to_thread(_name)),  # a task started here
    ]


async def test_each_way_to_the_shared_pool_runs_on_the_threads_its_work_brought(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(SharedPool(2))
    own = ThreadPoolExecutor(1, thread_name_prefix="own")
    resolving: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        if args[:2] == ("localhost", 80):  # ours: not another test's thread still resolving
            resolving.append(_name())
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        with running_on(own):
            inside = await _where(loop)
            await loop.getaddrinfo("localhost", 80)  # as a registry's name is resolved
        outside = await _where(loop)
        # A task keeps the choice it started with: another's block changes nothing for it.
        side = asyncio.ensure_future(asyncio.to_thread(_name))
        with running_on(own):
            await asyncio.sleep(0)
            beside = await side
    finally:
        own.shutdown()
    assert [name.split("_")[0] for name in inside] == ["own"] * 3
    assert [name.split("_")[0] for name in resolving] == ["own"]
    assert [name.split("_")[0] for name in outside] == ["asyncio"] * 3
    assert beside.startswith("asyncio")


async def test_a_server_hands_its_loops_work_to_the_threads_it_belongs_to(tmp_path: Path) -> None:
    server = Server(ServeConfig(database=f"sqlite:///{tmp_path / 'c.db'}", listen="127.0.0.1:0"))
    own = ThreadPoolExecutor(1, thread_name_prefix="own")
    await server.start()
    try:
        with running_on(own):
            inside = await asyncio.to_thread(_name)
        outside = await asyncio.to_thread(_name)
    finally:
        await server.stop()
        own.shutdown()
    assert inside.startswith("own")
    assert outside.startswith("asyncio")
