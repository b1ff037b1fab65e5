"""Verification results and decisions as the store keeps them, and back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache, partial
from typing import Any, cast

from sqlalchemy import Boolean, Connection, Dialect, insert, select

from catalog.memo import IdentityMemo
from catalog.store.queries import AnyRow, Reads
from catalog.store.schema import decisions, verifications
from catalog.store.timestamps import UTCDateTime
from catalog.trust.policy.facts import Decision
from catalog.trust.signatures import Method, VerifiedSignature

# Verification columns that hold a VerifiedSignature field of the same name and meaning.
_RESULT_FIELDS = (
    "verified",
    "reason",
    "trust_root",
    "trust_version",
    "identity",
    "issuer",
    "key_fingerprint",
    "log_index",
    "log_id",
    "integrated_time",
    "predicate_type",
)


def stored_verifications(
    session: Reads, signatures: Sequence[AnyRow], subject: str, trust_version: str
) -> dict[int, VerifiedSignature]:
    """The results stored for ``signatures`` (rows of the signatures table) of ``subject`` under
    ``trust_version``, by signature id, in one query; a signature never verified under it is
    absent."""
    by_id = {signature.id: signature for signature in signatures}
    if not by_id:  # an unsigned digest: nothing to ask the database
        return {}
    rows = session.execute(
        select(verifications).where(
            verifications.c.signature_id.in_(list(by_id)),
            verifications.c.subject_digest == subject,
            verifications.c.trust_version == trust_version,
        )
    )
    return {
        row.signature_id: VerifiedSignature(
            attachment_digest=by_id[row.signature_id].attachment_digest,
            layer_digest=by_id[row.signature_id].layer_digest,
            method=cast("Method | None", row.method),
            extensions=dict(row.extensions),
            signed_digests=tuple(row.signed_digests),
            **{name: getattr(row, name) for name in _RESULT_FIELDS},
        )
        for row in rows
    }


def save_verification(
    session: Reads, signature: AnyRow, subject: str, result: VerifiedSignature
) -> None:
    session.execute(
        insert(verifications).values(
            signature_id=signature.id,
            subject_digest=subject,
            method=result.method,
            extensions=dict(result.extensions),
            signed_digests=list(result.signed_digests),
            **{name: getattr(result, name) for name in _RESULT_FIELDS},
        )
    )


# What the rows of one call to the log share: when and by whom they were asked, and the asked
# columns (namespace, object_ref, operation, requester, dry_run).
AskedColumns = tuple[str | None, str | None, str | None, str | None, bool | None]
Shared = tuple[datetime, str, AskedColumns]
# A decision as the log queues it: reference, decision, trust version, cached, what it shares.
Queued = tuple[str, Decision, str, bool, Shared]

# A row's columns, in the order of its parameters: the row's own, the decision's, the shared.
_OWN = ("reference", "trust_version", "cached")
_OF_DECISION = (
    "digest",
    "policy_name",
    "policy_version",
    "allowed",
    "mode",
    "reasons",
    "evidence",
)
_SHARED = (
    "decided_at",
    "principal",
    "namespace",
    "object_ref",
    "operation",
    "requester",
    "dry_run",
)
DECISION_COLUMNS = (*_OWN, *_OF_DECISION, *_SHARED)

# A column part's bind processors, as (index in the part, processor), by dialect and part.
_Processing = tuple[tuple[int, Callable[[Any], Any]], ...]
_PROCESSING: dict[tuple[str, tuple[str, ...]], _Processing] = {}
# A decision's columns as bound (and the dialect's name), by the decision object: cached
# decisions are the same object again and again, so each is serialised once, not once per row.
_BOUND: IdentityMemo[Decision, tuple[str, tuple[Any, ...]]] = IdentityMemo()


def _processing(dialect: Dialect, names: tuple[str, ...]) -> _Processing:
    """The bind processors SQLAlchemy would apply to ``names`` (JSON text, the timestamp as the
    column stores it), for rows written past its compiler. Booleans are left to the driver,
    which binds ``True`` as SQLAlchemy's processor does (1 on SQLite)."""
    found = _PROCESSING.get((dialect.name, names))
    if found is None:
        processing = []
        for index, name in enumerate(names):
            kind = decisions.c[name].type
            process = kind.dialect_impl(dialect).bind_processor(dialect)
            if isinstance(kind, UTCDateTime) and dialect.name == "sqlite":
                process = partial(_sqlite_time, kind, dialect)
            if process is not None and not isinstance(kind, Boolean):
                processing.append((index, process))
        found = _PROCESSING[(dialect.name, names)] = tuple(processing)
    return found


def _sqlite_time(kind: UTCDateTime, dialect: Dialect, value: datetime | None) -> str | None:
    """What SQLAlchemy's SQLite DATETIME stores for ``value`` (the UTC digits, always with
    microseconds), a quarter of the CPU of its processor, which formats through a dict."""
    utc = kind.process_bind_param(value, dialect)  # UTC; a naive datetime is refused
    return None if utc is None else utc.replace(tzinfo=None).isoformat(" ", "microseconds")


def _bound(values: tuple[Any, ...], processing: _Processing) -> tuple[Any, ...]:
    if not processing:
        return values
    bound = list(values)
    for index, process in processing:
        bound[index] = process(bound[index])
    return tuple(bound)


def _decision_part(decision: Decision, dialect: Dialect) -> tuple[Any, ...]:
    kept = _BOUND.get(decision)
    if kept is not None and kept[0] == dialect.name:
        return kept[1]
    values = (
        decision.digest,
        decision.policy,
        decision.policy_version,
        decision.allowed,
        decision.mode,
        list(decision.reasons),
        [e._asdict() for e in decision.evidence],
    )
    part = _bound(values, _processing(dialect, _OF_DECISION))
    _BOUND.put(decision, (dialect.name, part))
    return part


def decision_parameters(rows: Sequence[Queued], dialect: Dialect) -> list[Any]:
    """The rows' parameters for ``dialect``'s driver, one row after another in
    :data:`DECISION_COLUMNS` order, each value as SQLAlchemy would bind it."""
    own = _processing(dialect, _OWN)
    shared_processing = _processing(dialect, _SHARED)
    # The rows of one call share one part: bound once per write.
    shared_parts: dict[int, tuple[Shared, tuple[Any, ...]]] = {}
    values: list[Any] = []
    for reference, decision, trust_version, cached, shared in rows:
        mine = (reference, trust_version, cached)
        values.extend(_bound(mine, own) if own else mine)
        values.extend(_decision_part(decision, dialect))
        kept = shared_parts.get(id(shared))
        if kept is None or kept[0] is not shared:
            decided_at, principal, asked = shared
            part = _bound((decided_at, principal, *asked), shared_processing)
            kept = shared_parts[id(shared)] = (shared, part)
        values.extend(kept[1])
    return values


def record_decisions(connection: Connection, rows: Sequence[Queued]) -> None:
    """Insert queued decisions, in one transaction that the caller holds, through the driver
    with the values SQLAlchemy's insert would bind (its statement, per-row overhead and
    timestamp conversion cost more than SQLite's own insert of the row).

    On SQLite, as few multi-row INSERT statements as its bound-parameter limit allows: an
    executemany steps the statement once per row, and ``sqlite3`` releases the GIL around each
    step, so a writer thread beside a busy event loop waited for the GIL once per row (up to
    the 5 ms switch interval each). PostgreSQL gets SQLAlchemy's compiled statement (its bind
    casts) as one executemany, which psycopg sends as one pipeline."""
    dialect = connection.dialect
    values = decision_parameters(rows, dialect)
    width = len(DECISION_COLUMNS)
    if dialect.name != "sqlite":
        statement = _statement(dialect)
        connection.exec_driver_sql(
            statement,
            [
                dict(zip(DECISION_COLUMNS, values[start : start + width], strict=True))
                for start in range(0, len(values), width)
            ],
        )
        return
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    per_statement = max(1, driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    one = "(" + ", ".join("?" * width) + ")"
    head = f"INSERT INTO {decisions.name} ({', '.join(DECISION_COLUMNS)}) VALUES "
    for start in range(0, len(rows), per_statement):
        count = min(per_statement, len(rows) - start)
        connection.exec_driver_sql(
            head + ", ".join([one] * count),
            tuple(values[start * width : (start + count) * width]),
        )


@lru_cache(maxsize=4)
def _statement(dialect: Dialect) -> str:
    """SQLAlchemy's INSERT of every column for ``dialect``, with named parameters."""
    return str(insert(decisions).compile(dialect=dialect, column_keys=list(DECISION_COLUMNS)))
