"""The gate's warm-path read model: this process's writes are seen at once, another process's
within the documented bound, and a warm check reads nothing from the database."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import event

from catalog.app.catalog_service import CatalogService
from catalog.gate.checker import Gate
from catalog.oci.client import RegistryClient
from catalog.principals import SERVER, acting_as
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.trust.policy.stored import Policies
from catalog.trust.roots import TrustConfig
from tests.gate.catalogs import indexed_catalog
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

pytestmark = pytest.mark.timing

TTL = 0.3


async def test_moves_policies_and_signatures_are_seen(
    fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    host = fresh_registry.host
    key = ec.generate_private_key(ec.SECP256R1())
    signed, unsigned = build_image(rng, layers=1), build_image(rng, layers=1)
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", signed, "1.0")
        await push_signature(client, "shop/app", signed.digest, key)
        await push_built(client, "shop/app", unsigned, "2.0")
    database = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine, sessions, catalog = await indexed_catalog(host, tmp_path / "catalog.db")
    with acting_as(SERVER):
        Policies(sessions, set()).apply("default", key_policy(host, key))
    gate = Gate(sessions, TrustConfig(), state_ttl=TTL)
    reference = f"{host}/shop/app:1.0"

    async def decided() -> tuple[bool, str, int | None]:
        decision = (await gate.check(reference, offline=True)).decision
        return decision.allowed, decision.digest, decision.policy_version

    assert await decided() == (True, signed.digest, 1)
    # Warm: neither the read model nor the decision cache asks the database (the decision is
    # still logged: written at once here, with no background writer).
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert await decided() == (True, signed.digest, 1)
    assert [s.split()[0] for s in statements] == ["INSERT"]
    assert "decisions" in statements[0]

    # This process's writes, seen by the next check: a new policy version...
    with acting_as(SERVER):
        Policies(sessions, set()).apply("default", key_policy(host, key).replace("shop/**", "**"))
    assert await decided() == (True, signed.digest, 2)
    # ...and a tag moved by the indexer.
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", unsigned, "1.0")
    with acting_as(SERVER):
        await catalog.index("local")
    assert await decided() == (False, unsigned.digest, 2)

    # Another process's write (its own engine on the same database): seen within the TTL.
    other = make_engine(database)
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", signed, "1.0")
    with acting_as(SERVER):
        await CatalogService(session_factory(other)).index("local")
    other.dispose()
    await asyncio.sleep(TTL)
    assert await decided() == (True, signed.digest, 2)

    # A server's life applies many versions: the newest few stay loaded, the rest go.
    for version in range(3, 8):
        source = key_policy(host, key)
        with acting_as(SERVER):
            images = "shop/**" if version % 2 else "**"  # each a change from the one before
            Policies(sessions, set()).apply("default", source.replace("shop/**", images))
        assert (await decided())[2] == version
    assert sorted(gate._policies) == [("default", version) for version in (4, 5, 6, 7)]
    engine.dispose()


def test_only_writes_to_the_state_tables_clear_it(tmp_path: Path) -> None:
    """An index's package rows (SQL text sent past the compiler, naming the table it writes)
    keep the warm state; a write to a state table, or text SQL that names no table, clears it."""
    from sqlalchemy import insert, update

    from catalog.gate._state_cache import StateCache
    from catalog.store.documents import _insert_packages
    from catalog.store.schema import sboms, tags

    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    cache = StateCache(engine, ttl=60)
    with engine.begin() as conn:
        key = conn.execute(
            insert(sboms).values(
                attachment_digest="sha256:" + "a" * 64,
                layer_digest="sha256:" + "b" * 64,
                format="spdx",
                package_count=1,
            )
        ).inserted_primary_key
        assert key is not None
        sbom = key[0]
        row = (None, None, "npm", None, "left-pad", "1.3.0", "[]", None, None)
        _insert_packages(conn, [(sbom, *row)])
    assert cache.generation == 0
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE sboms SET name = 'x'")  # names no table: counted
    assert cache.generation > 0
    before = cache.generation
    with engine.begin() as conn:
        conn.execute(update(tags).values(digest="sha256:" + "c" * 64).where(tags.c.id == -1))
    assert cache.generation > before


def test_a_recursive_query_keeps_it(tmp_path: Path) -> None:
    """Every repository an index records asks what its tags reach in one recursive query
    (``WITH RECURSIVE``): a read, not SQL of unknown effect."""
    from sqlalchemy.orm import Session

    from catalog.gate._state_cache import StateCache
    from catalog.store import content

    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    cache = StateCache(engine, ttl=60)
    with Session(engine) as session, session.begin():
        assert content.reachable(session, {"sha256:" + "a" * 64}) == {"sha256:" + "a" * 64}
    assert cache.generation == 0


def test_a_state_read_while_a_write_commits_is_not_kept(tmp_path: Path) -> None:
    """SQLAlchemy's commit event comes before the database commits: a check that reads in
    between sees the old state under the new generation, and must not keep it."""
    from sqlalchemy import update

    from catalog.gate._state_cache import StateCache
    from catalog.store.schema import tags

    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    cache = StateCache(engine, ttl=60)
    key = ("shop/app:1.0", None, True)
    old_state = ("sha256:" + "a" * 64, None, (0, 0))

    def read_meanwhile(_conn: object) -> None:  # after the cache's own listener, before COMMIT
        cache.put(cache.generation, [(key, old_state)])

    event.listen(engine, "commit", read_meanwhile)
    with engine.begin() as conn:
        conn.execute(update(tags).values(digest="sha256:" + "c" * 64).where(tags.c.id == -1))
    event.remove(engine, "commit", read_meanwhile)
    assert cache.get([key]) == [None]
