"""Verification results and decisions as the store keeps them, and back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import fields
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Boolean, Connection, Dialect, insert, select

from catalog.store.audit import principal_text
from catalog.store.queries import AnyRow, Reads
from catalog.store.schema import decisions, utcnow, verifications
from catalog.trust.policy.facts import Decision, Evidence
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


_EVIDENCE = fields(Evidence)
# A decision's reasons and evidence as the row keeps them, by the decision object: cached
# decisions are the same object again and again (by id with an identity check, since hashing
# a decision walks all its evidence). Rows only read them.
_COLUMNS: dict[int, tuple[Decision, list[str], list[dict[str, Any]]]] = {}
_COLUMNS_MOST = 10_000


def _decision_columns(decision: Decision) -> tuple[list[str], list[dict[str, Any]]]:
    kept = _COLUMNS.get(id(decision))
    if kept is not None and kept[0] is decision:
        return kept[1], kept[2]
    reasons = list(decision.reasons)
    evidence = [{f.name: getattr(e, f.name) for f in _EVIDENCE} for e in decision.evidence]
    if len(_COLUMNS) >= _COLUMNS_MOST:
        _COLUMNS.clear()
    _COLUMNS[id(decision)] = (decision, reasons, evidence)
    return reasons, evidence


def decision_row(
    reference: str, decision: Decision, trust_version: str, cached: bool
) -> dict[str, Any]:
    """A decisions-table row, for :func:`record_decisions`."""
    reasons, evidence = _decision_columns(decision)
    return {
        "reference": reference,
        "digest": decision.digest,
        "policy_name": decision.policy,
        "policy_version": decision.policy_version,
        "trust_version": trust_version,
        "allowed": decision.allowed,
        "mode": decision.mode,
        "reasons": reasons,
        "evidence": evidence,
        "cached": cached,
        "decided_at": utcnow(),
        # Read now, in the call that asked: the row is written later, by the log's flusher.
        "principal": principal_text(),
    }


# A row's columns, in the order of a multi-row VALUES list (every row has them all).
DECISION_COLUMNS = (
    "reference",
    "digest",
    "policy_name",
    "policy_version",
    "trust_version",
    "allowed",
    "mode",
    "reasons",
    "evidence",
    "cached",
    "decided_at",
    "principal",
    "namespace",
    "object_ref",
    "operation",
    "requester",
    "dry_run",
)
_ROW = itemgetter(*DECISION_COLUMNS)
_JSON_COLUMNS = frozenset({"reasons", "evidence"})
# (column index, SQLAlchemy's bind processor, whether it is a JSON column) of each column
# whose value SQLite cannot take as it is, by dialect name.
_Processing = tuple[tuple[int, Callable[[Any], Any], bool], ...]
_PROCESSING: dict[str, _Processing] = {}


def _processing(dialect: Dialect) -> _Processing:
    """The bind processors SQLAlchemy would apply (JSON text, SQLite's timestamp text), for the
    multi-row statement written past its compiler. Booleans are left to ``sqlite3``, which
    binds ``True`` as 1 as SQLAlchemy's processor does."""
    found = _PROCESSING.get(dialect.name)
    if found is None:
        processing = []
        for index, name in enumerate(DECISION_COLUMNS):
            kind = decisions.c[name].type
            process = kind.dialect_impl(dialect).bind_processor(dialect)
            if process is not None and not isinstance(kind, Boolean):
                processing.append((index, process, name in _JSON_COLUMNS))
        found = _PROCESSING[dialect.name] = tuple(processing)
    return found


def record_decisions(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert decision rows (:func:`decision_row` plus the asked columns), in one transaction
    that the caller holds.

    On SQLite, as few multi-row INSERT statements as its bound-parameter limit allows: an
    executemany steps the statement once per row, and ``sqlite3`` releases the GIL around each
    step, so a writer thread beside a busy event loop waited for the GIL once per row (up to
    the 5 ms switch interval each). PostgreSQL keeps the executemany, which psycopg sends as
    one pipeline."""
    if connection.dialect.name != "sqlite":
        connection.execute(insert(decisions), list(rows))
        return
    processing = _processing(connection.dialect)
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    width = len(DECISION_COLUMNS)
    per_statement = max(1, driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    # The same reasons and evidence lists recur (cached decisions): serialised once per write.
    serialised: dict[int, tuple[object, Any]] = {}
    values: list[Any] = []
    for row in rows:
        got = list(_ROW(row))
        for index, process, memo in processing:
            value = got[index]
            if memo:
                kept = serialised.get(id(value))
                if kept is None or kept[0] is not value:
                    kept = serialised[id(value)] = (value, process(value))
                got[index] = kept[1]
            else:
                got[index] = process(value)
        values.extend(got)
    one = "(" + ", ".join("?" * width) + ")"
    head = f"INSERT INTO {decisions.name} ({', '.join(DECISION_COLUMNS)}) VALUES "
    for start in range(0, len(rows), per_statement):
        count = min(per_statement, len(rows) - start)
        connection.exec_driver_sql(
            head + ", ".join([one] * count),
            tuple(values[start * width : (start + count) * width]),
        )
