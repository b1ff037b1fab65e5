"""Blocking work runs on the threads the work it belongs to brought, else on the shared pool."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from catalog.threads import run_in, running_on, to_thread


def _name() -> str:
    return threading.current_thread().name


async def test_blocking_work_runs_on_the_threads_its_work_brought() -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(2, thread_name_prefix="shared"))
    own = ThreadPoolExecutor(1, thread_name_prefix="own")
    other = ThreadPoolExecutor(1, thread_name_prefix="given")

    async def work() -> list[str]:
        names = [await to_thread(_name), await run_in(None, _name)]
        # Tasks started inside inherit the choice; a caller naming threads keeps its own.
        names.append(await asyncio.ensure_future(to_thread(_name)))
        names.append(await run_in(other, _name))
        return names

    try:
        assert await to_thread(_name) == await run_in(None, _name)
        assert (await to_thread(_name)).startswith("shared")
        with running_on(own):
            inside = await work()
        outside = await to_thread(_name)  # the choice ends with the block
        # Each task keeps its own: one running on its threads changes no other's.
        side = asyncio.ensure_future(to_thread(_name))
        with running_on(own):
            await asyncio.sleep(0)
            assert (await side).startswith("shared")
    finally:
        own.shutdown()
        other.shutdown()
    assert [name.split("_")[0] for name in inside] == ["own", "own", "own", "given"]
    assert outside.startswith("shared")
