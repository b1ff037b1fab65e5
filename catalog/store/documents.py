"""Signatures, attestations (with provenance) and SBOMs (with packages) of attachment manifests."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import String, Table, insert, select
from sqlalchemy.orm import Session

from catalog.errors import FormatError
from catalog.formats.failures import decoder_failure
from catalog.formats.records import (
    PackageRecord,
    ProvenanceRecord,
    SbomRecord,
    SignatureRecord,
    StatementRecord,
)
from catalog.formats.sbom import decode_sbom, decode_sbom_statement
from catalog.store.models import (
    Attestation,
    Base,
    Provenance,
    Sbom,
    SbomPackage,
    Signature,
    table_of,
)
from catalog.store.purls import base_of

M = TypeVar("M", bound=Base)
_PACKAGE_BATCH = 2000
# A Core insert: the ORM's bulk path costs more than the rows for this many small rows.
_INSERT_PACKAGE = insert(table_of(SbomPackage))
_STATEMENT_LIMIT = 256 * 1024  # statements kept whole up to this size (JSON text)


@dataclass(slots=True)
class SignatureDoc:
    layer_digest: str
    layer_media_type: str
    layer: bytes
    annotations: dict[str, str]
    record: SignatureRecord


@dataclass(slots=True)
class AttestationDoc:
    layer_digest: str
    statement: StatementRecord
    provenance: ProvenanceRecord | None


@dataclass(slots=True)
class SbomDoc:
    """An SBOM, decoded while it is stored: its packages stream from ``source`` into the
    database, on the writer's thread rather than the crawler's."""

    layer_digest: str
    source: BinaryIO | bytes
    wrapped: bool = False  # an in-toto statement around the SBOM

    def decode(self) -> SbomRecord:
        return (decode_sbom_statement if self.wrapped else decode_sbom)(self.source)


@dataclass(slots=True)
class DecodedDocuments:
    signatures: list[SignatureDoc] = field(default_factory=list)
    attestations: list[AttestationDoc] = field(default_factory=list)
    sboms: list[SbomDoc] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # A layer could not be fetched (the registry, not the document): the next crawl tries again.
    unfetched: bool = False

    def close(self) -> None:
        for sbom in self.sboms:
            if not isinstance(sbom.source, bytes):
                sbom.source.close()


def decoded(session: Session, attachment_digests: Collection[str]) -> set[str]:
    """Those of the attachment manifests whose documents are already recorded."""
    wanted = sorted(set(attachment_digests))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for table in (Signature, Attestation, Sbom):
            found.update(
                session.scalars(
                    select(table.attachment_digest).where(table.attachment_digest.in_(chunk))
                )
            )
    return found


def _statement_json(statement: StatementRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_type": statement.statement_type,
        "predicateType": statement.predicate_type,
        "subject": [{"name": s.name, "digest": s.digests} for s in statement.subjects],
    }
    if statement.predicate is not None and len(repr(statement.predicate)) <= _STATEMENT_LIMIT:
        doc["predicate"] = statement.predicate
    return doc


def _subject_digests(statement: StatementRecord) -> list[str]:
    return [f"{alg}:{hex_}" for s in statement.subjects for alg, hex_ in s.digests.items()]


@functools.cache
def _lengths(table: Table) -> tuple[tuple[str, int], ...]:
    return tuple(
        (c.name, c.type.length)
        for c in table.columns
        if isinstance(c.type, String) and c.type.length is not None
    )


def _check_columns(table: Table, values: dict[str, Any], what: str) -> None:
    """Refuse (``FormatError``) a string longer than its column: PostgreSQL would fail the whole
    transaction, and with it every other document of the repository."""
    for name, length in _lengths(table):
        value = values.get(name)
        if isinstance(value, str) and len(value) > length:
            raise FormatError(
                f"{what}: {name} of {len(value)} characters is over the limit of {length}"
            )


def _checked(model: type[M], values: dict[str, Any], what: str) -> M:
    _check_columns(table_of(model), values, what)
    return model(**values)


def _read(packages: Iterable[PackageRecord]) -> Iterator[PackageRecord]:
    """The decoder's packages; whatever it raises reaches the caller as a ``FormatError``, so
    that a database error (which is not the document's) stays apart from a decoding one."""
    iterator = iter(packages)
    while True:
        try:
            package = next(iterator)
        except StopIteration:
            return
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(decoder_failure(exc)) from None
        yield package


def _package_row(sbom_id: int, package: Any) -> dict[str, Any] | None:
    name = package.name
    if not name:
        return None
    base = base_of(package.purl) if package.purl else None
    return {
        "sbom_id": sbom_id,
        "purl": package.purl,
        "purl_base": base,
        "type": package.type,
        "namespace": package.namespace,
        "name": name[:512],
        "version": package.version[:255] if package.version else None,
        "licenses": list(package.licenses),
    }


def store(session: Session, attachment_digest: str, docs: DecodedDocuments) -> int:
    """Record what was decoded from one attachment manifest; returns how many documents.

    SBOM packages stream into the database in batches; a package the decoder cannot read ends
    that SBOM's package list with an error (kept in ``docs.errors``), not the whole crawl.
    """
    count = 0
    for sig in docs.signatures:
        r = sig.record
        tlog = r.tlog_entries[0] if r.tlog_entries else None
        try:
            signature = _checked(
                Signature,
                {
                    "attachment_digest": attachment_digest,
                    "layer_digest": sig.layer_digest,
                    "format": r.format,
                    "identity": r.identity,
                    "issuer": r.issuer,
                    "extensions": dict(r.extensions),
                    "key_id": r.key_id,
                    "log_index": tlog.log_index if tlog else None,
                    "integrated_time": tlog.integrated_time if tlog else None,
                    "signed_digests": list(r.signed_digests),
                    "layer_media_type": sig.layer_media_type,
                    "layer": sig.layer,
                    "annotations": dict(sig.annotations),
                },
                f"layer {sig.layer_digest}",
            )
        except FormatError as exc:
            docs.errors.append(str(exc))
            continue
        session.add(signature)
        count += 1
    for att in docs.attestations:
        where = f"layer {att.layer_digest}"
        try:
            row = _checked(
                Attestation,
                {
                    "attachment_digest": attachment_digest,
                    "layer_digest": att.layer_digest,
                    "predicate_type": att.statement.predicate_type,
                    "subject_digests": _subject_digests(att.statement),
                    "statement": _statement_json(att.statement),
                },
                where,
            )
            if att.provenance is not None:
                p = att.provenance
                row.provenance = _checked(
                    Provenance,
                    {
                        "builder_id": p.builder_id,
                        "build_type": p.build_type,
                        "source_uri": p.source_uri,
                        "source_digest": p.source_digest,
                        "source_ref": p.source_ref,
                        "entry_point": p.entry_point,
                    },
                    where,
                )
        except FormatError as exc:
            docs.errors.append(str(exc))
            continue
        session.add(row)
        count += 1
    for doc in docs.sboms:
        try:
            record = doc.decode()
            sbom = _checked(
                Sbom,
                {
                    "attachment_digest": attachment_digest,
                    "layer_digest": doc.layer_digest,
                    "format": record.format,
                    "spec_version": record.spec_version,
                    "tool": ", ".join(record.tools)[:1000] or None,
                    "name": record.name,
                },
                "SBOM",
            )
        except Exception as exc:  # the document's failure, whatever the decoder raised
            docs.errors.append(f"layer {doc.layer_digest}: {decoder_failure(exc)}")
            continue
        session.add(sbom)
        session.flush()
        sbom.package_count = _store_packages(session, sbom.id, record, doc, docs.errors)
        count += 1
    session.flush()
    return count


def _store_packages(
    session: Session, sbom_id: int, record: SbomRecord, doc: SbomDoc, errors: list[str]
) -> int:
    stored = 0
    batch: list[dict[str, Any]] = []
    table = table_of(SbomPackage)
    try:
        for package in _read(record.packages):
            row = _package_row(sbom_id, package)
            if row is None:
                continue
            _check_columns(table, row, f"package #{stored + len(batch) + 1}")
            batch.append(row)
            if len(batch) >= _PACKAGE_BATCH:
                session.connection().execute(_INSERT_PACKAGE, batch)
                stored += len(batch)
                batch = []
    except FormatError as exc:
        errors.append(f"SBOM {doc.layer_digest}: packages after #{stored + len(batch)}: {exc}")
    if batch:
        session.connection().execute(_INSERT_PACKAGE, batch)
        stored += len(batch)
    return stored
