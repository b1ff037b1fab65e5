"""What the gate reads and writes: an image's state in one round trip, its signature layers, the
decision log. Core on the schema's tables, on a session or a plain connection: a warm check
imports no ORM."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, String, bindparam, func, literal, select, union_all

from catalog.oci.reference import ImageReference
from catalog.store import queries
from catalog.store.queries import AnyRow, Reads
from catalog.store.schema import (
    attachments,
    attestations,
    policies,
    provenance,
    registries,
    repositories,
    sboms,
    signatures,
    tags,
)
from catalog.store.views import ProvenanceView

# A signature layer attached to a digest, the predicate type of the attestation it signs (None:
# a plain signature) and that attestation's provenance (None: none recorded).
SignedLayer = tuple[AnyRow, str | None, ProvenanceView | None]


def _state_statement(digest: Any, *index: Any) -> Any:
    # The digest (NULL: no such tag) as a one-row table joined to its attachments: the tag's
    # subquery is written once, not once per attachments aggregate (half the compiling, which
    # a one-shot command pays for every statement).
    wanted = select(digest.label("digest")).subquery("wanted")
    return (
        select(
            *index,
            wanted.c.digest,
            select(func.max(policies.c.version))
            .where(policies.c.name == bindparam("policy"))
            .scalar_subquery(),
            func.count(attachments.c.id),
            func.max(attachments.c.id),
        )
        .select_from(wanted.outerjoin(attachments, attachments.c.subject_digest == wanted.c.digest))
        .group_by(wanted.c.digest)
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
                select(tags.c.digest)
                .join(repositories, tags.c.repository_id == repositories.c.id)
                .join(registries, repositories.c.registry_id == registries.c.id)
                .where(
                    registries.c.host == bindparam(f"host_{i}"),
                    repositories.c.name == bindparam(f"repository_{i}"),
                    tags.c.name == bindparam(f"tag_{i}"),
                    tags.c.gone_at.is_(None),
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


def attachments_marker(session: Reads, digest: str) -> tuple[int, int]:
    """(count, newest id) of a digest's attachments: changes whenever an attachment is added."""
    count, newest = session.execute(
        select(func.count(attachments.c.id), func.max(attachments.c.id)).where(
            attachments.c.subject_digest == digest
        )
    ).one()
    return int(count), int(newest or 0)


def _attached(digest: str) -> Any:
    return select(attachments.c.attachment_digest).where(attachments.c.subject_digest == digest)


# A signature's columns, its attestation's id and predicate type, its provenance's id and
# columns (no name among them is a signature column's).
_SIGNED_LAYERS = (
    select(
        signatures,
        attestations.c.id.label("attestation_id"),
        attestations.c.predicate_type,
        provenance.c.id.label("provenance_id"),
        *(c for c in provenance.c if c.name not in ("id", "attestation_id")),
    )
    .outerjoin(
        attestations,
        (attestations.c.attachment_digest == signatures.c.attachment_digest)
        & (attestations.c.layer_digest == signatures.c.layer_digest),
    )
    .outerjoin(provenance, provenance.c.attestation_id == attestations.c.id)
)


def signatures_of(session: Reads, digest: str) -> list[SignedLayer]:
    """The signature layers attached to ``digest``, each with its attestation when it signs one."""
    rows = session.execute(
        _SIGNED_LAYERS.where(signatures.c.attachment_digest.in_(_attached(digest))).order_by(
            signatures.c.id
        )
    ).all()
    return [
        (
            row,
            row.predicate_type if row.attestation_id is not None else None,
            queries.provenance_view(row) if row.provenance_id is not None else None,
        )
        for row in rows
    ]


def sbom_count(session: Reads, digest: str) -> int:
    query = select(func.count(sboms.c.id)).where(sboms.c.attachment_digest.in_(_attached(digest)))
    return int(session.scalar(query) or 0)


def tagged_images(session: Reads) -> list[tuple[str, str, str, str]]:
    """(registry host, repository, tag, digest) of every live tag that is not an attachment tag."""
    rows = session.execute(
        select(registries.c.host, repositories.c.name, tags.c.name, tags.c.digest)
        .join(repositories, tags.c.repository_id == repositories.c.id)
        .join(registries, repositories.c.registry_id == registries.c.id)
        .where(
            tags.c.gone_at.is_(None),
            ~tags.c.name.like("sha256-%"),
            ~tags.c.name.like("sha512-%"),
        )
        .order_by(registries.c.host, repositories.c.name, tags.c.name)
    ).all()
    return [(h, r, t, d) for h, r, t, d in rows]
