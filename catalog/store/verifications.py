"""What the gate reads and writes: an image's state in one round trip, its signature layers, the
decision log."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, String, bindparam, func, literal, select, union_all
from sqlalchemy.orm import Session

from catalog.oci.reference import ImageReference
from catalog.store import queries
from catalog.store.models import (
    Attachment,
    Attestation,
    Policy,
    Provenance,
    Registry,
    Repository,
    Sbom,
    Signature,
    Tag,
)


def _state_statement(digest: Any, *index: Any) -> Any:
    return select(
        *index,
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


GateState = tuple[str | None, int | None, tuple[int, int]]


@lru_cache(maxsize=64)
def _states_statement(by_tag: tuple[bool, ...]) -> Any:
    """One statement reading the state of several images (``by_tag[i]``: image i is a tag the
    catalog resolves), each row numbered; the bind parameters of image i end in ``_i``."""
    branches = []
    digest: Any
    for i, tag in enumerate(by_tag):
        if tag:
            digest = (
                select(Tag.digest)
                .join(Repository, Tag.repository_id == Repository.id)
                .join(Registry, Repository.registry_id == Registry.id)
                .where(
                    Registry.host == bindparam(f"host_{i}"),
                    Repository.name == bindparam(f"repository_{i}"),
                    Tag.name == bindparam(f"tag_{i}"),
                    Tag.gone_at.is_(None),
                )
                .scalar_subquery()
            )
        else:
            digest = bindparam(f"digest_{i}", type_=String)
        branches.append(_state_statement(digest, literal(i)))
    return union_all(*branches)


def gate_states(
    connection: Connection,
    references: Sequence[ImageReference],
    policy: str | None,
    resolve_tag: bool = True,
) -> list[GateState]:
    """:func:`gate_state` for several images in one round trip (a Pod's containers)."""
    if len(references) <= 1:
        return [gate_state(connection, r, policy, resolve_tag) for r in references]
    by_tag = tuple(r.digest is None and resolve_tag for r in references)
    params: dict[str, Any] = {"policy": policy}
    for i, reference in enumerate(references):
        if by_tag[i]:
            params.update({f"{k}_{i}": v for k, v in queries.tag_params(reference).items()})
        else:
            params[f"digest_{i}"] = str(reference.digest) if reference.digest else None
    found: list[GateState | None] = [None] * len(references)
    for index, digest, version, count, newest in connection.execute(
        _states_statement(by_tag), params
    ):
        found[index] = (digest, version, (int(count or 0), int(newest or 0)))
    return [state for state in found if state is not None]


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
