"""Group commit: several units of work (a crawl's repositories) in one transaction, each in a
savepoint of its own, so that a unit the database refuses is rolled back alone.

A commit costs SQLite a write of every page the transaction dirtied, and a crawl's package rows
dirty index pages at random: repositories committed together share most of those pages, where
committed one by one each wrote them again. The group is committed once it holds ``units``
units or has been open ``seconds`` (after the unit that passes it; its owner also commits when
it has waited that long for the next unit, :meth:`GroupTransaction.due_in`): a crash loses at
most that much, which the next crawl records again, and another writer waits at most that long
for SQLite's write lock.

Reads go to a connection of their own in autocommit (:meth:`GroupTransaction.reading`): one
statement each, where a read in the group's transaction on PostgreSQL took a savepoint around
it (three round trips), and one outside a group a transaction of its own (four, with the pool's
ping). They see what is committed; what the open group wrote that they must see too, its units
note (:meth:`GroupTransaction.note`), and a unit rolled back takes its notes with it. (So
the pool must give the reads a connection of their own: not an in-memory SQLite database's,
one connection a thread, which the catalog never uses.)

A unit may also hand the group writes to make once it has ended whole, in the group's
transaction outside any savepoint (:meth:`GroupTransaction.after_unit`): on SQLite, a savepoint
(and a statement that may abort midway, which takes one of its own) copies every page it first
changes to a journal of its own, and an SBOM's package rows change pages of two indexes at
random, more than a page a row. Those writes can no longer be rolled back alone: when one
fails, the database failed, as when a commit fails, and the whole group with it
(:class:`GroupFailed`).

Used on one thread only (a crawl's writer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import CatalogError
from catalog.oci.boundedjson import first_line

UNITS = 64
SECONDS = 1.0

GroupWrite = Callable[[Session], None]  # a write made after a unit, or at the commit


class GroupFailed(CatalogError):
    """A write the group made after a unit failed: the database failed, and the group's units
    since its last commit are lost with it (what was committed stays; the next crawl records
    the rest again)."""


class GroupTransaction:
    def __init__(
        self, sessions: sessionmaker[Session], *, units: int = UNITS, seconds: float = SECONDS
    ) -> None:
        self._sessions = sessions
        self._max_units, self._seconds = units, seconds
        self._session: Session | None = None
        self._units = 0
        self._began = 0.0
        self._reader: Session | None = None  # autocommit: reads of what is committed
        self._at_commit: dict[GroupWrite, None] = {}  # in order, each once
        # What the open group's units noted (kind → key → detail), and the current unit's.
        self._notes: dict[str, dict[str, str | None]] = {}
        self._unit_notes: dict[str, dict[str, str | None]] | None = None
        self._unit_after: list[GroupWrite] | None = None  # the current unit's (after_unit)
        # A commit, or a write after a unit, that failed: the database failed under the group,
        # which takes no more units (a new group would commit them after the crawl reported
        # its failure).
        self.failed: Exception | None = None

    def _open(self) -> Session:
        if self.failed is not None:  # a new group would commit units after the failure
            raise self.failed.with_traceback(None)
        if self._session is None:
            session = self._sessions()
            try:
                session.begin()
                connection = session.connection()
                if connection.dialect.name == "sqlite":
                    # The write lock now, as one transaction a repository took it at its first
                    # write: reads first on a deferred transaction could not take it later if
                    # another connection wrote in between (SQLite does not wait for that).
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                session.close()  # its connection back to the pool ("database is locked")
                raise
            self._session, self._units, self._began = session, 0, time.monotonic()
        return self._session

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """A unit of work in a savepoint of the group's transaction: rolled back alone when it
        raises (and the exception goes on). Once it has ended whole, the writes it handed to
        :meth:`after_unit` are made; if one fails, the group is rolled back and
        :class:`GroupFailed` raised. Its owner calls :meth:`commit_if_due` after it, outside of
        what it makes of a unit's failure: a failed commit is the database's, as is
        :class:`GroupFailed`."""
        session = self._open()
        notes: dict[str, dict[str, str | None]] = {}
        after: list[GroupWrite] = []
        self._unit_notes, self._unit_after = notes, after
        try:
            with session.begin_nested():
                yield session
        finally:
            self._unit_notes = self._unit_after = None
        if after:
            self._write_after(session, after)
        for kind, written in notes.items():
            self._notes.setdefault(kind, {}).update(written)
        self._units += 1

    def after_unit(self, write: GroupWrite) -> None:
        """Have ``write`` run on the group's connection once the current unit has ended whole
        (dropped if it is rolled back), in no savepoint. Only for writes the database has no
        reason to refuse (rows checked already, keys made here): a failure is taken for the
        database's (:class:`GroupFailed`)."""
        assert self._unit_after is not None, "a write after a unit is handed by a unit"
        self._unit_after.append(write)

    def _write_after(self, session: Session, writes: list[GroupWrite]) -> None:
        try:
            for write in writes:
                write(session)
        except BaseException as exc:  # half of them written: never committed
            units = self._units + 1
            self.rollback()
            self.failed = GroupFailed(
                f"the catalog's database failed under a group of {units} units not yet"
                f" committed, which are lost (the next index records them again):"
                f" {type(exc).__name__}: {first_line(exc)}"
            )
            if not isinstance(exc, Exception):
                raise
            raise self.failed from exc

    def note(self, kind: str, written: Mapping[str, str | None]) -> None:
        """Note, in a unit, what it wrote that later reads must see before the group's commit
        (``kind`` of thing, key → detail): kept once the unit ends whole, dropped with it."""
        assert self._unit_notes is not None, "a note is of a unit"
        self._unit_notes.setdefault(kind, {}).update(written)

    def noted(self, kind: str) -> Mapping[str, str | None]:
        """What the open group's units noted of ``kind``: what :meth:`reading` does not see."""
        return self._notes.get(kind, {})

    def at_commit(self, write: GroupWrite) -> None:
        """Have ``write`` run in the group's transaction at its commit, once however often it
        is given (a group is opened for it): writes many units would each make, in one
        statement for the group and no savepoint. Its failure is the commit's."""
        self._open()
        self._at_commit[write] = None

    def commit_if_due(self) -> None:
        if self._units >= self._max_units or self.due_in() == 0:
            self.commit()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for a read of what is committed (not the open group's writes: those its
        units noted are in :meth:`noted`), on a connection of its own, kept for the next read:
        in autocommit, a read is one statement, and one the database refuses aborts nothing."""
        if self._reader is None:
            reader = self._sessions()
            try:
                reader.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            except BaseException:
                reader.close()
                raise
            self._reader = reader
        try:
            yield self._reader
        except BaseException:
            self.close()  # a lost connection is not kept; the next read takes another
            raise

    def close(self) -> None:
        """Give the readers' connection back (the group itself: :meth:`commit`)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def due_in(self) -> float | None:
        """Seconds until the open group is due for its commit (``None``: none is open)."""
        if self._session is None:
            return None
        return max(0.0, self._began + self._seconds - time.monotonic())

    def commit(self) -> None:
        """Commit the open group, if any (when that fails, it is rolled back and closed)."""
        session, self._session = self._session, None
        self._notes = {}  # committed, the readers see it; failed, it is gone
        writes, self._at_commit = self._at_commit, {}
        if session is not None:
            try:
                for write in writes:
                    write(session)
                session.commit()
            except Exception as exc:
                self.failed = exc
                raise
            finally:
                session.close()

    def rollback(self) -> None:
        """Drop the open group, if any: the database failed under it."""
        session, self._session = self._session, None
        self._notes, self._at_commit = {}, {}
        if session is not None:
            session.close()
