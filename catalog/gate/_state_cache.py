"""A short-lived read model of what the warm gate path reads (a tag's digest, a policy's newest
version, a digest's attachments marker), so a warm check is answered without a database read
or a hop to a worker thread.

Correctness, bounded:
- Any write committed through this process's engine to a table the state is read from
  (registries, repositories, tags, policies, attachments; any other SQL but a read, to be
  safe) bumps a generation and empties the model at once: a tag moved by the indexer in the
  serve process, a policy applied through its API, a signature indexed live are seen by the
  next check.
- A write by another process (a CLI against the same database, another replica) is seen at most
  ``ttl`` seconds later: entries live that long.
- An entry read while a write was committing is never kept: it carries the generation taken
  before its read, and a different generation makes it a miss.
The trust configuration is not part of the state: it lives in the gate, keyed into decisions.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import Connection, Engine, Select, event

from catalog.store.schema import WRITTEN_TABLE

# The tables the state is read from (catalog.store.verifications.gate_states): a write to
# any other (manifests, signatures, the gate's own decisions…) changes no state.
_STATE_TABLES = frozenset({"registries", "repositories", "tags", "policies", "attachments"})
# Statements that write nothing.
_READS = ("SELECT", "PRAGMA", "SET ", "SHOW", "SAVEPOINT", "RELEASE", "ROLLBACK TO")

Row = tuple[str | None, int | None, tuple[int, int]]
Key = tuple[str, str | None, bool]  # (reference, policy, tag resolved through the catalog)


def _writes_state(context: Any, statement: str) -> bool:
    if getattr(context, "isinsert", False) or context.isupdate or context.isdelete:
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        name = getattr(table, "name", None)
        return name is None or name in _STATE_TABLES
    if isinstance(getattr(context.compiled, "statement", None), Select):
        return False  # a compiled query, also one starting WITH RECURSIVE (content.reachable)
    written = context.execution_options.get(WRITTEN_TABLE)  # a driver-level write says where
    if written is not None:
        return written in _STATE_TABLES
    # Anything else but a read (other text SQL, DDL): counted as a write, to be safe.
    return not statement.lstrip().upper().startswith(_READS)


class StateCache:
    def __init__(self, engine: Engine, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self._size = size
        self._entries: OrderedDict[Key, tuple[float, Row]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0
        if ttl > 0:
            event.listen(engine, "after_cursor_execute", self._executed)
            event.listen(engine, "commit", self._committed)
            event.listen(engine, "rollback", self._rolled_back)
            event.listen(engine, "begin", self._after_commit)
            event.listen(engine, "checkin", self._checked_in)

    # -- the engine's events: run on whichever thread executes -------------------------------

    def _executed(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if _writes_state(context, statement):
            conn.info["xregistry_state_written"] = True

    def _committed(self, conn: Connection) -> None:
        # SQLAlchemy calls this before the database commits: a check reading in between sees
        # the old state under the new generation. Emptied again once the commit is done (the
        # connection's next transaction, or its return to the pool, which follows a commit).
        if conn.info.pop("xregistry_state_written", False):
            conn.info["xregistry_state_committing"] = True
            self.invalidate()

    def _after_commit(self, conn: Connection) -> None:
        if conn.info.pop("xregistry_state_committing", False):
            self.invalidate()

    def _checked_in(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop("xregistry_state_committing", False):
            self.invalidate()

    def _rolled_back(self, conn: Connection) -> None:
        conn.info.pop("xregistry_state_written", None)

    # -- the model ---------------------------------------------------------------------------

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def get(self, keys: list[Key]) -> list[Row | None]:
        """Each key's row, None where it is missing or expired (one lock for them all: a
        review asks for all its images at once)."""
        if self.ttl <= 0:
            return [None] * len(keys)
        now = time.monotonic()
        rows: list[Row | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry[0] <= now:
                    del self._entries[key]
                    entry = None
                rows.append(None if entry is None else entry[1])
        return rows

    def put(self, generation: int, items: list[tuple[Key, Row]]) -> None:
        """Keep ``items``, read after :attr:`generation` was ``generation``."""
        if self.ttl <= 0:
            return
        expires = time.monotonic() + self.ttl
        with self._lock:
            if generation != self.generation:
                return  # a write committed while they were read: they may predate it
            for key, row in items:
                self._entries[key] = (expires, row)
                self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
