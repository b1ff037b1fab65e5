"""Signatures to judge, their stored verifications, policy versions and the decision log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, cast

from sqlalchemy import Connection, String, bindparam, func, insert, select
from sqlalchemy.orm import Session

from catalog.errors import NotFound
from catalog.oci.reference import ImageReference
from catalog.store import queries
from catalog.store.models import (
    Attachment,
    Attestation,
    DecisionRecord,
    Policy,
    Provenance,
    Registry,
    Repository,
    Sbom,
    Signature,
    Tag,
    Verification,
    utcnow,
)
from catalog.trust.facts import Decision, Evidence, Method, VerifiedSignature


def _state_statement(digest: Any) -> Any:
    return select(
        digest,
        select(func.max(Policy.version))
        .where(Policy.name == bindparam("policy"))
        .scalar_subquery(),
        select(func.count(Attachment.id))
        .where(Attachment.subject_digest == digest)
        .scalar_subquery(),
        select(func.max(Attachment.id))
        .where(Attachment.subject_digest == digest)
        .scalar_subquery(),
    )


_BY_TAG = _state_statement(queries.TAG_DIGEST.scalar_subquery())
_BY_DIGEST = _state_statement(bindparam("digest", type_=String))


def gate_state(
    connection: Connection, reference: ImageReference, policy: str | None, resolve_tag: bool = True
) -> tuple[str | None, int | None, tuple[int, int]]:
    """In one round trip, what the warm gate path reads: the digest (a digest reference as is,
    a tag through the catalog unless ``resolve_tag`` is off), the newest version of ``policy``,
    the attachments marker."""
    params: dict[str, Any] = {"policy": policy}
    if reference.digest is not None or not resolve_tag:
        statement = _BY_DIGEST
        params["digest"] = str(reference.digest) if reference.digest is not None else None
    else:
        statement = _BY_TAG
        params.update(queries.tag_params(reference))
    found, version, count, newest = connection.execute(statement, params).one()
    return found, version, (int(count or 0), int(newest or 0))


def attachments_marker(session: Session, digest: str) -> tuple[int, int]:
    """(count, newest id) of a digest's attachments: changes whenever an attachment is added."""
    count, newest = session.execute(
        select(func.count(Attachment.id), func.max(Attachment.id)).where(
            Attachment.subject_digest == digest
        )
    ).one()
    return int(count), int(newest or 0)


def signatures_of(
    session: Session, digest: str
) -> list[tuple[Signature, Attestation | None, Provenance | None]]:
    """The signature layers attached to ``digest``, each with its attestation when it signs one."""
    attached = select(Attachment.attachment_digest).where(Attachment.subject_digest == digest)
    rows = session.execute(
        select(Signature, Attestation, Provenance)
        .outerjoin(
            Attestation,
            (Attestation.attachment_digest == Signature.attachment_digest)
            & (Attestation.layer_digest == Signature.layer_digest),
        )
        .outerjoin(Provenance, Provenance.attestation_id == Attestation.id)
        .where(Signature.attachment_digest.in_(attached))
        .order_by(Signature.id)
    ).all()
    return [(s, a, p) for s, a, p in rows]


def sbom_count(session: Session, digest: str) -> int:
    attached = select(Attachment.attachment_digest).where(Attachment.subject_digest == digest)
    return int(
        session.scalar(select(func.count(Sbom.id)).where(Sbom.attachment_digest.in_(attached))) or 0
    )


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


def apply_policy(session: Session, name: str, source: str, digest: str) -> tuple[Policy, bool]:
    """Store a policy set; a new version only when the content changed."""
    current = session.scalar(
        select(Policy).where(Policy.name == name).order_by(Policy.version.desc()).limit(1)
    )
    if current is not None and current.digest == digest:
        return current, False
    row = Policy(
        name=name, version=(current.version + 1) if current else 1, digest=digest, source=source
    )
    session.add(row)
    session.flush()
    return row, True


def current_policy(session: Session, name: str) -> Policy:
    row = session.scalar(
        select(Policy).where(Policy.name == name).order_by(Policy.version.desc()).limit(1)
    )
    if row is None:
        raise NotFound(f"no policy set named {name!r}: apply one with `xregistry policy apply`")
    return row


def current_policy_version(session: Session, name: str) -> int:
    version = session.scalar(select(func.max(Policy.version)).where(Policy.name == name))
    if version is None:
        raise NotFound(f"no policy set named {name!r}: apply one with `xregistry policy apply`")
    return int(version)


def current_policies(
    session: Session, after: str | None = None, limit: int | None = None
) -> list[Policy]:
    """The newest version of each policy set by name: those after ``after``, at most ``limit``."""
    newest = select(Policy.name, func.max(Policy.version).label("version")).group_by(Policy.name)
    if after is not None:
        newest = newest.where(Policy.name > after)
    current = newest.subquery()
    return list(
        session.scalars(
            select(Policy)
            .join(current, (Policy.name == current.c.name) & (Policy.version == current.c.version))
            .order_by(Policy.name)
            .limit(limit)
        )
    )


_EVIDENCE = fields(Evidence)


def decision_row(
    reference: str, decision: Decision, trust_version: str, cached: bool
) -> dict[str, Any]:
    """A decisions-table row, for :func:`record_decisions`."""
    return {
        "reference": reference,
        "digest": decision.digest,
        "policy_name": decision.policy,
        "policy_version": decision.policy_version,
        "trust_version": trust_version,
        "allowed": decision.allowed,
        "mode": decision.mode,
        "reasons": list(decision.reasons),
        "evidence": [{f.name: getattr(e, f.name) for f in _EVIDENCE} for e in decision.evidence],
        "cached": cached,
        "decided_at": utcnow(),
    }


def record_decisions(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(DecisionRecord), rows)


def tagged_images(session: Session) -> list[tuple[str, str, str, str]]:
    """(registry host, repository, tag, digest) of every live tag that is not an attachment tag."""
    rows = session.execute(
        select(Registry.host, Repository.name, Tag.name, Tag.digest)
        .join(Repository, Tag.repository_id == Repository.id)
        .join(Registry, Repository.registry_id == Registry.id)
        .where(Tag.gone_at.is_(None), ~Tag.name.like("sha256-%"), ~Tag.name.like("sha512-%"))
        .order_by(Registry.host, Repository.name, Tag.name)
    ).all()
    return [(h, r, t, d) for h, r, t, d in rows]
