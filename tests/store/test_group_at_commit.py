"""Writes a group runs at its commit (``GroupTransaction.at_commit``), on SQLite and
PostgreSQL: each once however often given, in the group's transaction (a group opened for them
when none is), after its units; one that fails fails the commit, and nothing of the group is
kept."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.store.grouped import GroupTransaction
from catalog.store.schema import registries


def _names(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(registries.c.name).order_by(registries.c.id)))


def test_writes_at_commit_run_once_after_the_units(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    group = GroupTransaction(sessions, units=100, seconds=60)
    runs: list[int] = []

    def write(session: Session) -> None:
        runs.append(len(runs))
        session.execute(insert(registries).values(name="at-commit", host="at-commit.test"))

    group.at_commit(write)
    assert group.due_in() is not None  # a group opened for it: its time runs
    with group.unit() as session:
        session.execute(insert(registries).values(name="unit", host="unit.test"))
    group.at_commit(write)
    assert _names(engine) == []
    group.commit()
    assert runs == [0]
    assert _names(engine) == ["unit", "at-commit"]
    group.commit()  # given to that group only
    assert runs == [0]


def test_a_write_at_commit_that_fails_fails_the_commit(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    group = GroupTransaction(sessions, units=100, seconds=60)
    with group.unit() as session:
        session.execute(insert(registries).values(name="unit", host="unit.test"))

    def refused(session: Session) -> None:
        session.execute(insert(registries).values(name="unit", host="again.test"))

    group.at_commit(refused)
    with pytest.raises(IntegrityError):
        group.commit()
    assert isinstance(group.failed, IntegrityError)
    assert _names(engine) == []
