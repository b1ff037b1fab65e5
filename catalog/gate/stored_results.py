"""Verification results and decisions as the store keeps them, and back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.store.audit import principal_text
from catalog.store.models import Signature, Verification, utcnow
from catalog.trust import Method, VerifiedSignature
from catalog.trust.policy import Decision, Evidence

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
    session: Session, signatures: Sequence[Signature], subject: str, trust_version: str
) -> dict[int, VerifiedSignature]:
    """The results stored for ``signatures`` of ``subject`` under ``trust_version``, by
    signature id, in one query; a signature never verified under it is absent."""
    by_id = {signature.id: signature for signature in signatures}
    if not by_id:  # an unsigned digest: nothing to ask the database
        return {}
    rows = session.scalars(
        select(Verification).where(
            Verification.signature_id.in_(list(by_id)),
            Verification.subject_digest == subject,
            Verification.trust_version == trust_version,
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
    session: Session, signature: Signature, subject: str, result: VerifiedSignature
) -> None:
    session.add(
        Verification(
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
