"""The gate's checks and its decision log run on threads of their own: with every thread of the
event loop's shared pool taken (long what-ifs, large lists, a stalled read), a cold check is
still answered and its decision still written."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from catalog.app.catalog_service import CatalogService
from catalog.gate.checker import Gate
from catalog.oci.client import RegistryClient
from catalog.principals import SERVER, acting_as
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec
from catalog.trust.policy.stored import Policies
from catalog.trust.roots import TrustConfig
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

SHARED_POOL_MOST = 32  # min(32, cores + 4): more than any machine's shared pool holds


async def test_a_cold_check_and_its_log_go_on_while_the_shared_pool_is_taken(
    fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    host = fresh_registry.host
    key = ec.generate_private_key(ec.SECP256R1())
    image = build_image(rng, layers=1)
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", image, "1.0")
        await push_signature(client, "shop/app", image.digest, key)
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    with acting_as(SERVER):
        CatalogService(sessions).add_registry(RegistrySpec("local", host))
        await CatalogService(sessions).index("local")
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
