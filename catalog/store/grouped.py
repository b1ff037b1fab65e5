"""Group commit: several units of work (a crawl's repositories) in one transaction, each in a
savepoint of its own, so that a unit the database refuses is rolled back alone.

A commit costs SQLite a write of every page the transaction dirtied, and a crawl's package rows
dirty index pages at random: repositories committed together share most of those pages, where
committed one by one each wrote them again. The group is committed once it holds ``units``
units or has been open ``seconds`` (after the unit that passes it; its owner also commits when
it has waited that long for the next unit, :meth:`GroupTransaction.due_in`): a crash loses at
most that much, which the next crawl records again, and another writer waits at most that long
for SQLite's write lock.

Used on one thread only (a crawl's writer).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

UNITS = 64
SECONDS = 1.0


class GroupTransaction:
    def __init__(
        self, sessions: sessionmaker[Session], *, units: int = UNITS, seconds: float = SECONDS
    ) -> None:
        self._sessions = sessions
        self._max_units, self._seconds = units, seconds
        self._session: Session | None = None
        self._units = 0
        self._began = 0.0
        # A commit that failed: the database failed under the group, and its owner takes no
        # more units (a new group would commit them after the crawl reported its failure).
        self.failed: Exception | None = None

    def _open(self) -> Session:
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
        raises (and the exception goes on). Its owner calls :meth:`commit_if_due` after it,
        outside of what it makes of a unit's failure: a failed commit is the database's."""
        session = self._open()
        with session.begin_nested():
            yield session
        self._units += 1

    def commit_if_due(self) -> None:
        if self._units >= self._max_units or self.due_in() == 0:
            self.commit()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for a read that must see the group's writes: the open transaction's, else
        a new one of its own. In the group's transaction, on PostgreSQL, the read is in a
        savepoint: there a refused statement aborts the whole transaction, and every later unit
        with it. Not on SQLite: a refused statement ends only itself there (and the errors
        that end its transaction end it past any savepoint), and a savepoint is two more
        statements a read."""
        session = self._session
        if session is None:
            with self._sessions() as own:
                yield own
        elif session.get_bind().dialect.name == "sqlite":
            yield session
        else:
            with session.begin_nested():
                yield session

    def due_in(self) -> float | None:
        """Seconds until the open group is due for its commit (``None``: none is open)."""
        if self._session is None:
            return None
        return max(0.0, self._began + self._seconds - time.monotonic())

    def commit(self) -> None:
        """Commit the open group, if any (when that fails, it is rolled back and closed)."""
        session, self._session = self._session, None
        if session is not None:
            try:
                session.commit()
            except Exception as exc:
                self.failed = exc
                raise
            finally:
                session.close()

    def rollback(self) -> None:
        """Drop the open group, if any: the database failed under it."""
        session, self._session = self._session, None
        if session is not None:
            session.close()
