"""Group commit (``store.grouped``, and the crawl's writer thread that commits a group when it
has waited its time), on SQLite and PostgreSQL: a unit that fails is rolled back alone and the
others' rows are kept, and their units' notes with them; reads see what is committed, and the
open group's writes only as its units noted them; a read the database refuses leaves the group
whole; a group is committed when full, when due, when the writer waits, and when it is due
between reads. Writes a unit hands the group are made after it, outside its savepoint, only
when it ends whole; when one fails, the group fails and what was committed stays."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.index._writer import WriterThread
from catalog.store.grouped import GroupFailed, GroupTransaction, GroupWrite
from catalog.store.schema import registries
from tests.harness.statements import recorded_statements


def _add(session: Session, name: str) -> None:
    session.execute(insert(registries).values(name=name, host=f"{name}.test"))


def _names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(select(registries.c.name)))


def _lose_connection(group: GroupTransaction) -> None:
    """A unit recorded, then the group's connection gone: its commit cannot succeed."""
    with group.unit() as session:
        _add(session, "lost")
    session.connection().invalidate()


def test_a_failing_unit_is_rolled_back_alone(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    group = GroupTransaction(sessions, units=100, seconds=60)
    with group.unit() as session:
        _add(session, "one")

    def refused() -> None:
        with group.unit() as session:
            _add(session, "two")
            _add(session, "one")  # the database refuses it: names are unique

    with pytest.raises(IntegrityError):
        refused()
    with group.unit() as session:
        _add(session, "three")
    group.commit_if_due()  # neither full nor due
    assert group.due_in() is not None
    assert _names(engine) == set()
    group.commit()
    assert group.due_in() is None
    assert _names(engine) == {"one", "three"}


def _add_after(name: str) -> GroupWrite:
    def write(session: Session) -> None:
        session.execute(insert(registries).values(name=name, host=f"{name}.test"))

    return write


def test_writes_after_a_unit_are_made_outside_its_savepoint_once_it_ends_whole(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    group = GroupTransaction(sessions, units=100, seconds=60)
    with recorded_statements(engine) as statements, group.unit() as session:
        group.after_unit(_add_after("one after"))
        _add(session, "one")
    *_, release, written = statements
    assert release.startswith("RELEASE SAVEPOINT"), statements
    assert written.startswith("INSERT INTO registries"), statements

    def refused() -> None:
        with group.unit() as session:
            group.after_unit(_add_after("two after"))
            _add(session, "one")  # the database refuses it: names are unique

    with pytest.raises(IntegrityError):
        refused()
    group.commit()
    assert _names(engine) == {"one", "one after"}


def test_a_write_after_a_unit_that_fails_fails_the_group_and_keeps_what_was_committed(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Rows written after a unit cannot be rolled back alone: their failure is the database's,
    as a failed commit is. The group's units since its last commit are lost (a later crawl
    records them again), the group takes no unit after it, and nothing committed is lost."""
    group = GroupTransaction(sessions, units=100, seconds=60)
    with group.unit() as session:
        _add(session, "committed")
    group.commit()
    with group.unit() as session:
        _add(session, "lost")

    def failing() -> None:
        with group.unit() as session:
            _add(session, "lost too")
            group.after_unit(_add_after("committed"))  # refused: names are unique

    with pytest.raises(GroupFailed, match="group of 2 units") as failed:
        failing()
    assert "UNIQUE" in str(failed.value) or "unique" in str(failed.value)
    assert "INSERT" not in str(failed.value)  # the driver's first line, not the statement
    assert group.failed is failed.value

    def later() -> None:
        with group.unit() as session:
            _add(session, "later")

    with pytest.raises(GroupFailed):  # no new group after it
        later()
    group.commit()  # none open
    assert _names(engine) == {"committed"}
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]

    writer = WriterThread(GroupTransaction(sessions, units=100, seconds=60), "test-writer")
    try:

        def failing_unit() -> None:
            with writer.group.unit() as session:
                writer.group.after_unit(_add_after("committed"))
                _add(session, "lost in the writer")

        with pytest.raises(GroupFailed):
            writer.submit(failing_unit).result(timeout=10)
        with pytest.raises(GroupFailed):  # the writer takes no more calls
            writer.submit(func.now).result(timeout=10)
    finally:
        writer.shutdown()
    assert _names(engine) == {"committed"}


def test_reads_see_what_is_committed_and_the_groups_notes(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A read takes one statement on a connection of its own (no savepoint in the group's
    transaction): it sees the group's writes once committed, and before that what its units
    noted; a unit rolled back takes its notes with it, and a commit ends them."""
    group = GroupTransaction(sessions, units=100, seconds=60)
    with group.unit() as session:
        _add(session, "one")
        group.note("names", {"one": None})

    def refused() -> None:
        with group.unit() as session:
            group.note("names", {"two": "why"})
            _add(session, "two")
            _add(session, "one")  # the database refuses it: names are unique

    with pytest.raises(IntegrityError):
        refused()
    with group.unit() as session:
        _add(session, "three")
        group.note("names", {"three": "detail"})
    assert group.noted("names") == {"one": None, "three": "detail"}
    with recorded_statements(engine) as statements, group.reading() as session:
        assert set(session.scalars(select(registries.c.name))) == set()
    assert len(statements) == 1, statements  # the read alone: no SAVEPOINT, no RELEASE
    group.commit()
    assert group.noted("names") == {}
    with group.reading() as session:
        assert set(session.scalars(select(registries.c.name))) == {"one", "three"}
    group.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_group_is_committed_when_full_or_due(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    group = GroupTransaction(sessions, units=2, seconds=60)
    for name in ("a", "b"):
        with group.unit() as session:
            _add(session, name)
        assert _names(engine) == set()  # not before its owner asks
        group.commit_if_due()
    assert _names(engine) == {"a", "b"}  # two units: full
    group = GroupTransaction(sessions, units=100, seconds=0.2)
    with group.unit() as session:
        _add(session, "c")
    group.commit_if_due()
    assert _names(engine) == {"a", "b"}
    time.sleep(0.3)
    group.commit_if_due()
    assert _names(engine) == {"a", "b", "c"}


def test_the_writer_commits_a_group_when_it_has_waited_its_time(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    def unit(name: str) -> None:
        with writer.group.unit() as session:
            _add(session, name)
        writer.group.commit_if_due()

    writer = WriterThread(GroupTransaction(sessions, units=100, seconds=0.3), "test-writer")
    try:
        writer.submit(unit, "x").result(timeout=10)
        writer.submit(unit, "y").result(timeout=10)
        assert _names(engine) == set()  # in the open group
        deadline = time.monotonic() + 10
        while _names(engine) != {"x", "y"}:
            assert time.monotonic() < deadline, "the waiting writer did not commit its group"
            time.sleep(0.05)
        writer.submit(unit, "z").result(timeout=10)
    finally:
        writer.shutdown()
    assert _names(engine) == {"x", "y", "z"}  # committed as the writer stopped


def test_a_read_the_database_refuses_leaves_the_group_whole(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """PostgreSQL aborts a transaction at its first refused statement: a read in the group
    outside a savepoint took the group's units with it ("current transaction is aborted")."""
    group = GroupTransaction(sessions, units=100, seconds=60)
    with group.unit() as session:
        _add(session, "before")
    with pytest.raises(DBAPIError), group.reading() as session:
        session.execute(text("SELECT name FROM no_such_table"))
    with group.reading() as session:
        assert set(session.scalars(select(registries.c.name))) == set()  # not committed yet
    with group.unit() as session:
        _add(session, "after")
    group.commit()
    assert _names(engine) == {"before", "after"}


def test_a_group_due_is_committed_between_reads(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Reads queued without a pause end no unit and give the writer no wait: the group (and
    SQLite's write lock) stayed open past its time for as long as they came."""
    group = GroupTransaction(sessions, units=100, seconds=0.2)
    seen: list[set[str]] = []

    def unit() -> None:
        with group.unit() as session:
            _add(session, "unit")
        group.commit_if_due()

    def read() -> None:
        with group.reading() as session:
            session.execute(select(registries.c.name)).all()
        time.sleep(0.02)
        seen.append(_names(engine))  # what other connections see

    writer = WriterThread(group, "test-writer")
    try:
        writer.submit(unit).result(timeout=10)
        reads = [writer.submit(read) for _ in range(40)]  # ~0.8 s of calls, queued at once
        for future in reads:
            future.result(timeout=10)
    finally:
        writer.shutdown()
    # All 40 were queued before the first ended (~0.02 s each): the writer never waited.
    assert seen[-1] == {"unit"}, "the group stayed open past its time while reads came"


def test_a_commit_that_fails_while_waiting_fails_the_later_calls(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    group = GroupTransaction(sessions, units=100, seconds=0.2)
    writer = WriterThread(group, "test-writer")
    try:
        writer.submit(_lose_connection, group).result(timeout=10)
        time.sleep(0.5)  # the writer commits while it waits, and fails
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raised
            writer.submit(func.now).result(timeout=10)
    finally:
        writer.shutdown()
    assert _names(engine) == set()


def test_a_commit_that_fails_when_due_fails_the_later_calls(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Not only the waiting writer's commit: a unit's own commit that fails stops the writer
    too, or the calls after it would open a new group and commit it after the crawl failed."""
    group = GroupTransaction(sessions, units=1, seconds=60)
    writer = WriterThread(group, "test-writer")
    try:

        def broken_unit() -> None:
            _lose_connection(group)
            group.commit_if_due()  # full: commits, and fails

        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raised
            writer.submit(broken_unit).result(timeout=10)

        def later_unit() -> None:
            with group.unit() as session:
                _add(session, "later")

        with pytest.raises(Exception):  # noqa: B017, PT011 - the failed commit's error
            writer.submit(later_unit).result(timeout=10)
    finally:
        writer.shutdown()
    assert _names(engine) == set()


def test_nothing_is_taken_after_the_writer_stopped(sessions: sessionmaker[Session]) -> None:
    writer = WriterThread(GroupTransaction(sessions), "test-writer")
    writer.shutdown()
    with pytest.raises(RuntimeError, match="stopped"):  # not a future that never ends
        writer.submit(func.now)


def test_a_group_that_cannot_begin_gives_its_connection_back(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's BEGIN IMMEDIATE is what may fail (database is locked)")

    def locked(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("BEGIN IMMEDIATE"):
            raise RuntimeError("database is locked")

    group = GroupTransaction(sessions)
    event.listen(engine, "before_cursor_execute", locked)
    try:
        for _ in range(3):
            with pytest.raises(RuntimeError, match="locked"), group.unit():
                pass
    finally:
        event.remove(engine, "before_cursor_execute", locked)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
