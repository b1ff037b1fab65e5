"""Indexing one digest (the gate's live look-up) while another recording of the same content
commits: the second finds the first's rows and records what is left, not an error."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from catalog.index.single import index_digest
from catalog.oci.client import RegistryClient
from catalog.oci.repository import RemoteRepository
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import Manifest, Signature
from tests.harness.faultproxy import FaultProxy
from tests.harness.images import build_image
from tests.pushing import push_built
from tests.signing import push_signature
from tests.store.conftest import empty_database


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_two_look_ups_of_one_new_image_at_once_both_record(
    proxied: FaultProxy,
    tmp_path: Path,
    rng: random.Random,
    database: str,
    request: pytest.FixtureRequest,
) -> None:
    image = build_image(rng, layers=1, layer_size=512)
    key = ec.generate_private_key(ec.SECP256R1())
    async with RegistryClient(proxied.host) as client:
        await push_built(client, "shop/app", image, "1.0")
        await push_signature(client, "shop/app", image.digest, key)
    engine = make_engine(empty_database(database, tmp_path, request))
    upgrade(engine)
    sessions = session_factory(engine)
    # Each request waits: both read what the catalog holds (nothing) before either records.
    proxied.latency = 0.05

    async def look_up() -> int:
        async with RegistryClient(proxied.host) as client:
            return await index_digest(sessions, RemoteRepository(client, "shop/app"), image.digest)

    counts = await asyncio.gather(look_up(), look_up())

    assert sorted(counts) == [0, 1]  # the signature is new to one of them
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Signature)) == 1
        # The image and its signature's manifest.
        assert session.scalar(select(func.count()).select_from(Manifest)) == 2
    engine.dispose()
