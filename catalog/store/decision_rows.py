"""The decision log's rows, written past SQLAlchemy's compiler: each value bound as its insert
would bind it, the rows sent straight to the driver (its statement, per-row overhead and
timestamp conversion cost more than the database's own insert of the row).

The gate maps a decision to its values (``catalog.gate.stored_results``); this module binds and
writes them. A statement sent here names the table it writes in the execution option
:data:`~catalog.store.schema.WRITTEN_TABLE`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import Boolean, Connection, Dialect, insert

from catalog.store.schema import WRITTEN_TABLE, decisions
from catalog.store.timestamps import UTCDateTime

# A row's columns, in the order of its parameters: the row's own, the decision's, the shared
# (what the rows of one call to the log share: when, by whom, and where they were asked).
OWN = ("reference", "trust_version", "cached")
OF_DECISION = (
    "digest",
    "policy_name",
    "policy_version",
    "allowed",
    "mode",
    "reasons",
    "evidence",
)
SHARED = (
    "decided_at",
    "principal",
    "namespace",
    "object_ref",
    "operation",
    "requester",
    "dry_run",
)
DECISION_COLUMNS = (*OWN, *OF_DECISION, *SHARED)

# A column part's bind processors, as (index in the part, processor), by dialect and part.
Processing = tuple[tuple[int, Callable[[Any], Any]], ...]
_PROCESSING: dict[tuple[str, tuple[str, ...]], Processing] = {}


def processing(dialect: Dialect, names: tuple[str, ...]) -> Processing:
    """The bind processors SQLAlchemy would apply to the decision columns ``names`` (JSON text,
    the timestamp as the column stores it). Booleans are left to the driver, which binds
    ``True`` as SQLAlchemy's processor does (1 on SQLite)."""
    found = _PROCESSING.get((dialect.name, names))
    if found is None:
        made = []
        for index, name in enumerate(names):
            kind = decisions.c[name].type
            process = kind.dialect_impl(dialect).bind_processor(dialect)
            if isinstance(kind, UTCDateTime) and dialect.name == "sqlite":
                process = partial(_sqlite_time, kind, dialect)
            if process is not None and not isinstance(kind, Boolean):
                made.append((index, process))
        found = _PROCESSING[(dialect.name, names)] = tuple(made)
    return found


def _sqlite_time(kind: UTCDateTime, dialect: Dialect, value: datetime | None) -> str | None:
    """What SQLAlchemy's SQLite DATETIME stores for ``value`` (the UTC digits, always with
    microseconds), a quarter of the CPU of its processor, which formats through a dict."""
    utc = kind.process_bind_param(value, dialect)  # UTC; a naive datetime is refused
    return None if utc is None else utc.replace(tzinfo=None).isoformat(" ", "microseconds")


def bound(values: tuple[Any, ...], processing: Processing) -> tuple[Any, ...]:
    """``values`` with ``processing`` applied."""
    if not processing:
        return values
    done = list(values)
    for index, process in processing:
        done[index] = process(done[index])
    return tuple(done)


def insert_rows(connection: Connection, values: Sequence[Any]) -> None:
    """Insert decision rows, their bound values one row after another in
    :data:`DECISION_COLUMNS` order, in the transaction the caller holds.

    On SQLite, as few multi-row INSERT statements as its bound-parameter limit allows: an
    executemany steps the statement once per row, and ``sqlite3`` releases the GIL around each
    step, so a writer thread beside a busy event loop waited for the GIL once per row (up to
    the 5 ms switch interval each). PostgreSQL gets SQLAlchemy's compiled statement (its bind
    casts) as one executemany, which psycopg sends as one pipeline."""
    dialect = connection.dialect
    width = len(DECISION_COLUMNS)
    options = {WRITTEN_TABLE: decisions.name}
    if dialect.name != "sqlite":
        connection.exec_driver_sql(
            _statement(dialect),
            [
                dict(zip(DECISION_COLUMNS, values[start : start + width], strict=True))
                for start in range(0, len(values), width)
            ],
            execution_options=options,
        )
        return
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    per_statement = max(1, driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    one = "(" + ", ".join("?" * width) + ")"
    head = f"INSERT INTO {decisions.name} ({', '.join(DECISION_COLUMNS)}) VALUES "
    rows = len(values) // width
    for start in range(0, rows, per_statement):
        count = min(per_statement, rows - start)
        connection.exec_driver_sql(
            head + ", ".join([one] * count),
            tuple(values[start * width : (start + count) * width]),
            execution_options=options,
        )


@lru_cache(maxsize=4)
def _statement(dialect: Dialect) -> str:
    """SQLAlchemy's INSERT of every column for ``dialect``, with named parameters."""
    return str(insert(decisions).compile(dialect=dialect, column_keys=list(DECISION_COLUMNS)))
