"""A repository whose recording the database refuses is rolled back and recorded as one index
error, and the crawl goes on with the others (before: the exception ended the whole crawl); on
SQLite and on PostgreSQL, where a refused statement aborts the whole transaction but for a
savepoint: the writer records repositories in groups, one savepoint each (``store.grouped``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.app.catalog_service import CatalogService
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import IndexErrorRecord, Repository, Tag
from catalog.store.registries import RegistrySpec, update_registry
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built

# A real refusal by the database, for content no check of ours foresaw.
_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON tags WHEN NEW.name = 'poison'"
        " BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.name = 'poison' THEN"
        " RAISE EXCEPTION 'poison refused' USING ERRCODE = 'check_violation'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON tags"
        " FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ],
}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_repository_the_database_refuses_is_an_error_and_the_crawl_goes_on(
    fresh_registry: RunningRegistry,
    tmp_path: Path,
    rng: random.Random,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    async with RegistryClient(fresh_registry.host) as client:
        await push_built(client, "good/app", build_image(rng, layers=1), "v1")
        await push_built(client, "bad/app", build_image(rng, layers=1), "poison")
        await push_built(client, "zzz/app", build_image(rng, layers=1), "v1")
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("refused")
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        for statement in _REFUSE[kind]:
            connection.exec_driver_sql(statement)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        update_registry(session, RegistrySpec("local", fresh_registry.host))

    stats = await CatalogService(sessions).index("local")

    with sessions() as session:
        tags = set(
            session.execute(
                select(Repository.name, Tag.name).join(
                    Repository, Tag.repository_id == Repository.id
                )
            ).all()
        )
        errors = session.execute(select(IndexErrorRecord.repository, IndexErrorRecord.reason)).all()
    engine.dispose()
    assert tags == {("good/app", "v1"), ("zzz/app", "v1")}
    assert stats.errors == 1
    assert len(errors) == 1
    repository, reason = errors[0]
    assert repository == "bad/app"
    assert reason.startswith("cannot record the repository (IntegrityError: ")
    assert "poison refused" in reason
    assert "\n" not in reason
