"""Verification results and decisions as the store keeps them, and back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Dialect, insert, select

from catalog.memo import IdentityMemo
from catalog.store import decision_rows
from catalog.store.queries import AnyRow, Reads
from catalog.store.schema import verifications
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

# A decision's columns as bound (and the dialect's name), by the decision object: cached
# decisions are the same object again and again, so each is serialised once, not once per row.
_BOUND: IdentityMemo[Decision, tuple[str, tuple[Any, ...]]] = IdentityMemo()


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
    part = decision_rows.bound(values, decision_rows.processing(dialect, decision_rows.OF_DECISION))
    _BOUND.put(decision, (dialect.name, part))
    return part


def decision_parameters(rows: Sequence[Queued], dialect: Dialect) -> list[Any]:
    """The rows' parameters for ``dialect``'s driver, one row after another in
    :data:`~catalog.store.decision_rows.DECISION_COLUMNS` order, each value as SQLAlchemy would
    bind it."""
    own = decision_rows.processing(dialect, decision_rows.OWN)
    shared_processing = decision_rows.processing(dialect, decision_rows.SHARED)
    # The rows of one call share one part: bound once per write.
    shared_parts: dict[int, tuple[Shared, tuple[Any, ...]]] = {}
    values: list[Any] = []
    for reference, decision, trust_version, cached, shared in rows:
        mine = (reference, trust_version, cached)
        values.extend(decision_rows.bound(mine, own))
        values.extend(_decision_part(decision, dialect))
        kept = shared_parts.get(id(shared))
        if kept is None or kept[0] is not shared:
            decided_at, principal, asked = shared
            part = decision_rows.bound((decided_at, principal, *asked), shared_processing)
            kept = shared_parts[id(shared)] = (shared, part)
        values.extend(kept[1])
    return values


def record_decisions(connection: Connection, rows: Sequence[Queued]) -> None:
    """Insert queued decisions, in one transaction that the caller holds (see
    :func:`catalog.store.decision_rows.insert_rows`)."""
    decision_rows.insert_rows(connection, decision_parameters(rows, connection.dialect))
