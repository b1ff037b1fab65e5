"""The gate's checks and its decision log run on threads of their own: with every thread of the
event loop's shared pool taken (long what-ifs, large lists, a stalled read), a cold check is
still answered and its decision still written."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

from catalog.gate.checker import Gate
from catalog.principals import SERVER, acting_as
from catalog.trust.policy.stored import Policies
from catalog.trust.roots import TrustConfig
from tests.gate.catalogs import signed_image_indexed
from tests.harness.registry import RunningRegistry
from tests.signing import key_policy

SHARED_POOL_MOST = 32  # min(32, cores + 4): more than any machine's shared pool holds


async def test_a_cold_check_and_its_log_go_on_while_the_shared_pool_is_taken(
    fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    host = fresh_registry.host
    engine, sessions, _, key = await signed_image_indexed(host, rng, tmp_path / "catalog.db")
    with acting_as(SERVER):
        Policies(sessions, set()).apply("default", key_policy(host, key))
    gate = Gate(sessions, TrustConfig())
    gate.audit.start()

    release = threading.Event()
    taken = [
        asyncio.ensure_future(asyncio.to_thread(release.wait, 30))
        for _ in range(SHARED_POOL_MOST + 8)
    ]
    try:
        async with asyncio.timeout(10):
            # Cold: the state read, the signature's verification and the evaluation each need
            # a thread; the decision's row a write.
            result = await gate.check(f"{host}/shop/app:1.0", offline=True)
            assert result.decision.allowed, result.decision.reasons
            for _ in range(1000):  # the writer runs every 50 ms
                if not gate.audit.waiting:
                    break
                await asyncio.sleep(0.01)
            assert gate.audit.waiting == 0
        assert not any(task.done() for task in taken)  # the shared pool was taken throughout
    finally:
        release.set()
        await asyncio.gather(*taken)
        await gate.audit.stop()
        engine.dispose()
