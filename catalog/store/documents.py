"""Signatures, attestations (with provenance) and SBOMs (with packages) of attachment manifests."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import String, Table, insert, null, select, union_all
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
from catalog.store.content import chunks
from catalog.store.models import (
    Attestation,
    Base,
    Provenance,
    Sbom,
    SbomPackage,
    Signature,
    UndecodableDocument,
    table_of,
)
from catalog.store.purls import base_of

M = TypeVar("M", bound=Base)
_PACKAGE_BATCH = 2000
# Core inserts: the ORM's bookkeeping per row costs more than these many small rows.
_PACKAGES = table_of(SbomPackage)
_SBOMS = table_of(Sbom)
_INSERT_PACKAGE = insert(_PACKAGES)
_INSERT_SBOM = insert(_SBOMS).returning(_SBOMS.c.id, sort_by_parameter_order=True)
_INSERT_SIGNATURE = insert(table_of(Signature))
# What a package row holds beside its strings' characters, at most (a dict of eight entries,
# its licenses list, the string objects): what a prepared SBOM's budget counts.
_ROW_COST = 1024
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
class PreparedSbom:
    """An SBOM decoded ahead of the writer: its ``sboms`` row, its package rows (without
    ``sbom_id``) and why its package list ended early; or why it could not be read at all."""

    row: dict[str, Any] | None = None
    packages: list[dict[str, Any]] = field(default_factory=list)
    package_error: str | None = None
    failure: str | None = None


@dataclass(slots=True)
class SbomDoc:
    """An SBOM: decoded ahead (``prepare``, on a worker thread) when its package rows fit in
    memory beside the others; else decoded while it is stored, its packages streaming from
    ``source`` into the database on the writer's thread."""

    layer_digest: str
    source: BinaryIO | bytes
    wrapped: bool = False  # an in-toto statement around the SBOM
    prepared: PreparedSbom | None = None

    def decode(self) -> SbomRecord:
        return (decode_sbom_statement if self.wrapped else decode_sbom)(self.source)

    def prepare(self, budget: int) -> None:
        """Decode the SBOM and build its package rows now, unless the rows would take more
        than ``budget`` bytes: then the writer streams them as before. Either way the
        outcome (rows, errors) is the same."""
        start = None if isinstance(self.source, bytes) else self.source.tell()
        try:
            row, record = _sbom_row(self)
        except Exception as exc:  # the document's failure, whatever the decoder raised
            self.prepared = PreparedSbom(failure=_sbom_failure(self, exc))
            return
        prepared = PreparedSbom(row)
        cost = 0
        try:
            for package in _package_rows(record):
                cost += _ROW_COST + sum(len(v) for v in package.values() if type(v) is str)
                if cost > budget:
                    if start is not None and not isinstance(self.source, bytes):
                        self.source.seek(start)  # the writer streams this one from the start
                    return
                prepared.packages.append(package)
        except FormatError as exc:
            prepared.package_error = _packages_failure(self, len(prepared.packages), exc)
        self.prepared = prepared


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
    return recorded_or_refused(session, attachment_digests)[0]


def recorded_or_refused(
    session: Session, attachment_digests: Collection[str]
) -> tuple[set[str], dict[str, str]]:
    """Those of the attachment manifests whose documents are recorded (:func:`decoded`), and
    those refused before (digest → why): a crawl fetches neither again."""
    recorded: set[str] = set()
    refused: dict[str, str] = {}
    # One statement over table columns: every repository of every re-index asks this, and four
    # ORM statements cost more than the rows they return.
    undecodable = table_of(UndecodableDocument).c
    for chunk in chunks(sorted(set(attachment_digests))):
        asked = [
            select(column, null().label("reason")).where(column.in_(chunk))
            for column in (
                table_of(table).c.attachment_digest for table in (Signature, Attestation, Sbom)
            )
        ]
        asked.append(
            select(undecodable.digest, undecodable.reason).where(undecodable.digest.in_(chunk))
        )
        for digest, reason in session.execute(union_all(*asked)):
            if reason is None:
                recorded.add(digest)
            else:
                refused[digest] = reason
    return recorded, refused


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


def _package_row(package: PackageRecord) -> dict[str, Any] | None:
    name = package.name
    if not name:
        return None
    base = base_of(package.purl) if package.purl else None
    return {
        "purl": package.purl,
        "purl_base": base,
        "type": package.type,
        "namespace": package.namespace,
        "name": name[:512],
        "version": package.version[:255] if package.version else None,
        "licenses": list(package.licenses),
    }


def _package_rows(record: SbomRecord) -> Iterator[dict[str, Any]]:
    """The SBOM's package rows (without ``sbom_id``) in order; a ``FormatError`` ends them."""
    count = 0
    for package in _read(record.packages):
        row = _package_row(package)
        if row is None:
            continue
        count += 1
        _check_columns(_PACKAGES, row, f"package #{count}")
        yield row


def _sbom_row(doc: SbomDoc) -> tuple[dict[str, Any], SbomRecord]:
    """The SBOM's header decoded into its ``sboms`` row (without ``attachment_digest``)."""
    record = doc.decode()
    row = {
        "layer_digest": doc.layer_digest,
        "format": record.format,
        "spec_version": record.spec_version,
        "tool": ", ".join(record.tools)[:1000] or None,
        "name": record.name,
    }
    _check_columns(_SBOMS, row, "SBOM")
    return row, record


def _sbom_failure(doc: SbomDoc, exc: Exception) -> str:
    return f"layer {doc.layer_digest}: {decoder_failure(exc)}"


def _packages_failure(doc: SbomDoc, stored: int, exc: FormatError) -> str:
    return f"SBOM {doc.layer_digest}: packages after #{stored}: {exc}"


def store(session: Session, attachment_digest: str, docs: DecodedDocuments) -> int:
    """Record what was decoded from one attachment manifest; returns how many documents."""
    return store_all(session, {attachment_digest: docs})[attachment_digest]


def store_all(session: Session, held: dict[str, DecodedDocuments]) -> dict[str, int]:
    """Record what was decoded from attachment manifests (digest → documents); returns how many
    documents each had recorded.

    Rows go in with one Core insert per table for all the attachments (prepared SBOMs' packages
    too); an SBOM left to stream is decoded now, its packages streaming into the database in
    batches. A package the decoder cannot read ends that SBOM's package list with an error
    (kept in the attachment's ``errors``), not the whole crawl.
    """
    counts = dict.fromkeys(held, 0)
    signatures: list[dict[str, Any]] = []
    for digest, docs in held.items():
        for sig in docs.signatures:
            try:
                signatures.append(_signature_row(digest, sig))
            except FormatError as exc:
                docs.errors.append(str(exc))
                continue
            counts[digest] += 1
        for att in docs.attestations:
            try:
                session.add(_attestation(digest, att))
            except FormatError as exc:
                docs.errors.append(str(exc))
                continue
            counts[digest] += 1
    connection = session.connection()
    if signatures:
        connection.execute(_INSERT_SIGNATURE, signatures)
    prepared: list[tuple[dict[str, Any], PreparedSbom]] = []
    for digest, docs in held.items():
        for doc in docs.sboms:
            if doc.prepared is None:
                counts[digest] += _stream_sbom(session, digest, doc, docs.errors)
                continue
            ready = doc.prepared
            if ready.row is None:
                docs.errors.append(ready.failure or "")
                continue
            if ready.package_error is not None:
                docs.errors.append(ready.package_error)
            row = {**ready.row, "attachment_digest": digest, "package_count": len(ready.packages)}
            prepared.append((row, ready))
            counts[digest] += 1
    if prepared:
        ids = connection.execute(_INSERT_SBOM, [row for row, _ in prepared]).scalars().all()
        packages = [
            {**package, "sbom_id": sbom_id}
            for sbom_id, (_, ready) in zip(ids, prepared, strict=True)
            for package in ready.packages
        ]
        for start in range(0, len(packages), _PACKAGE_BATCH):
            connection.execute(_INSERT_PACKAGE, packages[start : start + _PACKAGE_BATCH])
    session.flush()
    return counts


def _signature_row(digest: str, sig: SignatureDoc) -> dict[str, Any]:
    r = sig.record
    tlog = r.tlog_entries[0] if r.tlog_entries else None
    row = {
        "attachment_digest": digest,
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
    }
    _check_columns(table_of(Signature), row, f"layer {sig.layer_digest}")
    return row


def _attestation(digest: str, att: AttestationDoc) -> Attestation:
    where = f"layer {att.layer_digest}"
    row = _checked(
        Attestation,
        {
            "attachment_digest": digest,
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
    return row


def _stream_sbom(session: Session, digest: str, doc: SbomDoc, errors: list[str]) -> int:
    """Decode an SBOM too large to prepare and stream its packages in; 1 when it is recorded."""
    try:
        row, record = _sbom_row(doc)
    except Exception as exc:  # the document's failure, whatever the decoder raised
        errors.append(_sbom_failure(doc, exc))
        return 0
    sbom = Sbom(attachment_digest=digest, **row)
    session.add(sbom)
    session.flush()
    stored = 0
    batch: list[dict[str, Any]] = []
    connection = session.connection()
    try:
        for package in _package_rows(record):
            batch.append({**package, "sbom_id": sbom.id})
            if len(batch) >= _PACKAGE_BATCH:
                connection.execute(_INSERT_PACKAGE, batch)
                stored += len(batch)
                batch = []
    except FormatError as exc:
        errors.append(_packages_failure(doc, stored + len(batch), exc))
    if batch:
        connection.execute(_INSERT_PACKAGE, batch)
        stored += len(batch)
    sbom.package_count = stored
    return 1
