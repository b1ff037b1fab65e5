"""Signatures, attestations (with provenance) and SBOMs (with packages) of attachment manifests."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    String,
    Table,
    insert,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from catalog.errors import FormatError
from catalog.formats.records import ProvenanceRecord, SignatureRecord, StatementRecord
from catalog.store import sbom_rows
from catalog.store.content import among, chunks, insert_ids
from catalog.store.grouped import GroupWrite
from catalog.store.models import (
    Attestation,
    Provenance,
    Sbom,
    SbomPackage,
    Signature,
    UndecodableDocument,
    table_of,
)
from catalog.store.sbom_rows import (
    PACKAGE_COLUMNS,
    Columns,
    PackageRow,
    PreparedSbom,
    check_columns,
    package_rows,
    packages_failure,
    sbom_failure,
    sbom_row,
)
from catalog.store.schema import WRITTEN_TABLE

if TYPE_CHECKING:
    import psycopg

_PACKAGE_BATCH = 1024  # package rows a statement, at most (a power of two: see _statement_sizes)
# Core inserts: the ORM's bookkeeping per row costs more than these many small rows.
_PACKAGES = table_of(SbomPackage)
_SBOMS = table_of(Sbom)
_INSERT_SIGNATURE = insert(table_of(Signature))
_ATTESTATIONS = table_of(Attestation)
_PROVENANCE = table_of(Provenance)
_DOCUMENT_KEY = ("attachment_digest", "layer_digest")  # unique in sboms and attestations
# Statements kept whole (predicate included) up to this size, in bytes of their JSON. Told from
# the statement's size, not by measuring the predicate: a repr or a dump of a multi-megabyte
# predicate holds the GIL, and with it the event loop, for tens of milliseconds.
_STATEMENT_LIMIT = 256 * 1024


@functools.cache
def _lengths(table: Table) -> tuple[tuple[str, int], ...]:
    return tuple(
        (c.name, c.type.length)
        for c in table.columns
        if isinstance(c.type, String) and c.type.length is not None
    )


# The column limits an SBOM's rows are checked against, as plain data for worker processes.
COLUMNS = Columns(
    sbom=_lengths(_SBOMS),
    package=tuple(
        (PACKAGE_COLUMNS.index(name), length)
        for name, length in _lengths(_PACKAGES)
        if name in PACKAGE_COLUMNS and name not in ("name", "version")  # cut, not refused
    ),
)


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
    """An SBOM: decoded ahead (``prepare``, on a worker thread, or ``sbom_rows.prepare`` in a
    worker process) when its package rows fit in memory beside the others; else decoded while
    it is stored, its packages streaming from ``source`` into the database on the writer's
    thread."""

    layer_digest: str
    source: BinaryIO | bytes
    wrapped: bool = False  # an in-toto statement around the SBOM
    prepared: PreparedSbom | None = None

    def prepare(self, budget: int) -> None:
        """Decode the SBOM and build its rows now, unless the package rows would take more
        than ``budget`` bytes: then the writer streams them as before. Either way the
        outcome (rows, errors) is the same."""
        start = None if isinstance(self.source, bytes) else self.source.tell()
        self.prepared = sbom_rows.prepare(
            self.layer_digest, self.source, wrapped=self.wrapped, budget=budget, columns=COLUMNS
        )
        if self.prepared is None and start is not None and not isinstance(self.source, bytes):
            self.source.seek(start)  # the writer streams this one from the start


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
    return _recorded(session, attachment_digests, refused=False)[0]


def recorded_or_refused(
    session: Session, attachment_digests: Collection[str]
) -> tuple[set[str], dict[str, str]]:
    """Those of the attachment manifests whose documents are recorded (:func:`decoded`), and
    those refused before (digest → why): a crawl fetches neither again."""
    return _recorded(session, attachment_digests, refused=True)


def _recorded(
    session: Session, attachment_digests: Collection[str], *, refused: bool
) -> tuple[set[str], dict[str, str]]:
    recorded: set[str] = set()
    refusals: dict[str, str] = {}
    # One statement over table columns: every repository of every re-index asks this, and four
    # ORM statements cost more than the rows they return.
    undecodable = table_of(UndecodableDocument).c
    for chunk in chunks(sorted(set(attachment_digests))):
        asked = [
            select(column, null().label("reason")).where(among(session, column, chunk))
            for column in (
                table_of(table).c.attachment_digest for table in (Signature, Attestation, Sbom)
            )
        ]
        if refused:
            asked.append(
                select(undecodable.digest, undecodable.reason).where(
                    among(session, undecodable.digest, chunk)
                )
            )
        for digest, reason in session.execute(union_all(*asked)):
            if reason is None:
                recorded.add(digest)
            else:
                refusals[digest] = reason
    return recorded, refusals


def _statement_json(statement: StatementRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_type": statement.statement_type,
        "predicateType": statement.predicate_type,
        "subject": [{"name": s.name, "digest": s.digests} for s in statement.subjects],
    }
    if statement.predicate is not None and statement.size <= _STATEMENT_LIMIT:
        doc["predicate"] = statement.predicate
    return doc


def _subject_digests(statement: StatementRecord) -> list[str]:
    return [f"{alg}:{hex_}" for s in statement.subjects for alg, hex_ in s.digests.items()]


def store(session: Session, attachment_digest: str, docs: DecodedDocuments) -> int:
    """Record what was decoded from one attachment manifest; returns how many documents."""
    return store_all(session, {attachment_digest: docs})[attachment_digest]


def store_all(
    session: Session,
    held: dict[str, DecodedDocuments],
    *,
    after_unit: Callable[[GroupWrite], None] | None = None,
) -> dict[str, int]:
    """Record what was decoded from attachment manifests (digest → documents); returns how many
    documents each had recorded.

    Rows go in with one Core insert per table for all the attachments (prepared SBOMs' packages
    too); an SBOM left to stream is decoded now, its packages streaming into the database in
    batches. A package the decoder cannot read ends that SBOM's package list with an error
    (kept in the attachment's ``errors``), not the whole crawl.

    Given ``after_unit`` (a group's, ``store.grouped``), on SQLite the prepared SBOMs' package
    rows are handed to it, to be written once the unit has ended whole, outside its savepoint
    (see :func:`_insert_packages`): the bulk of a crawl's writes, and what cost SQLite
    most in journal writes. They were checked when prepared, and their ``sbom_id`` is the row
    just written: only the database itself can fail them.
    """
    counts = dict.fromkeys(held, 0)
    signatures: list[dict[str, Any]] = []
    attestations: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
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
                attestations.append(_attestation_rows(digest, att))
            except FormatError as exc:
                docs.errors.append(str(exc))
                continue
            counts[digest] += 1
    connection = session.connection()
    if signatures:
        connection.execute(_INSERT_SIGNATURE, signatures)
    if attestations:
        _insert_attestations(connection, attestations)
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
        ids = insert_ids(connection, _SBOMS, [row for row, _ in prepared], _DOCUMENT_KEY)
        packages = [
            (sbom_id, *package)
            for sbom_id, (_, ready) in zip(ids, prepared, strict=True)
            for package in ready.packages
        ]
        if after_unit is None or connection.dialect.name != "sqlite":
            _insert_packages(connection, packages)
        elif packages:
            after_unit(lambda group: _insert_packages(group.connection(), packages))
    session.flush()
    return counts


_PACKAGE_COLUMNS = ("sbom_id", *PACKAGE_COLUMNS)
_COPY_PACKAGES = f"COPY {_PACKAGES.name} ({', '.join(_PACKAGE_COLUMNS)}) FROM STDIN (FORMAT binary)"


def _copy_type(column: Column[Any]) -> str:
    """The PostgreSQL type a package column's values go to a binary ``COPY`` as: an integer as
    its column's width (binary integers are not converted), any string as ``text``, the
    licenses' JSON text too (``json``'s binary form is its text, validated as ``json_in``
    validates it)."""
    if isinstance(column.type, BigInteger):
        return "int8"
    if isinstance(column.type, Integer):
        return "int4"
    return "text"


_COPY_TYPES = tuple(_copy_type(_PACKAGES.c[name]) for name in _PACKAGE_COLUMNS)


@functools.lru_cache(maxsize=16)
def _insert_packages_sql(rows: int) -> str:
    """SQLite's statement for ``rows`` package rows (one of :func:`_statement_sizes`')."""
    values = f"({', '.join('?' for _ in _PACKAGE_COLUMNS)})"
    columns = ", ".join(_PACKAGE_COLUMNS)
    return f"INSERT OR FAIL INTO {_PACKAGES.name} ({columns}) VALUES " + ", ".join([values] * rows)


def _insert_packages(connection: Connection, rows: Sequence[tuple[int, *PackageRow]]) -> None:
    """Package rows (``sbom_id`` first) straight to the driver: per row, SQLAlchemy's parameter
    work cost more than the database's insert. The rows are what the driver takes as they are
    (the licenses already JSON text, as the JSON type writes them; PostgreSQL reads that text
    into its ``json`` column as it would the parameter).

    On SQLite, many rows a statement: its ``executemany`` gives up the GIL and waits to take it
    back at every row (behind the crawl's event loop); 10 parameters a row keeps a batch inside
    its limit on parameters. ``OR FAIL``, and no foreign key (migration 0010): nothing lets the
    statement abort midway, so SQLite keeps no statement journal for it, and written after its
    unit (outside any savepoint) nothing copies the index pages it changes to a temporary file
    first (~3.5 ``pwrite`` calls a row before). On PostgreSQL, ``COPY`` (:func:`_copy_packages`):
    psycopg's ``executemany`` spent ~30 us of Python a row (its pipeline's bookkeeping), and the
    server a statement's execution a row; ``COPY`` rows are read by the server in one stream. Both
    number the rows in the order given, as the inserts did. Neither writes gate state: the
    gate's state cache stays (``WRITTEN_TABLE`` for SQLite's statement; ``COPY`` goes past
    SQLAlchemy's events)."""
    if connection.dialect.paramstyle != "qmark":
        _copy_packages(connection, rows)
        return
    options = {WRITTEN_TABLE: _PACKAGES.name}
    start = 0
    for size in _statement_sizes(len(rows)):
        connection.exec_driver_sql(
            _insert_packages_sql(size),
            tuple(itertools.chain.from_iterable(rows[start : start + size])),
            execution_options=options,
        )
        start += size


def _copy_packages(connection: Connection, rows: Sequence[tuple[int, *PackageRow]]) -> None:
    """PostgreSQL: the rows by one ``COPY`` in binary. psycopg (its pure-Python build, the one
    installed) formats a row in ~3.4 us instead of the text format's ~8.6 (a regex a field
    for the escapes): ~1 ms of the writer thread an SBOM of 200 packages. The server's side
    costs about the same either way (~1% fewer instructions: a row's index entries are most of
    its cost, as its foreign key's check was before migration 0010)."""
    driver = cast("psycopg.Connection[Any]", connection.connection.dbapi_connection)
    with driver.cursor() as cursor, cursor.copy(_COPY_PACKAGES) as copy:
        copy.set_types(_COPY_TYPES)
        for row in rows:
            copy.write_row(row)


def _statement_sizes(rows: int) -> list[int]:
    """Rows a statement for ``rows`` package rows: batches of ``_PACKAGE_BATCH``, the rest in
    powers of two (binary digits), so that a connection only ever compiles a dozen statements
    and its statement cache keeps them. Compiling a multi-row INSERT costs SQLite about four
    times what running it does (~19,000 instructions a row against ~4,500, measured): an SBOM's
    odd row count made each call's last statement a new one."""
    full, rest = divmod(rows, _PACKAGE_BATCH)
    return [_PACKAGE_BATCH] * full + [
        1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1
    ]


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
    check_columns(_lengths(table_of(Signature)), row, f"layer {sig.layer_digest}")
    return row


def _attestation_rows(
    digest: str, att: AttestationDoc
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An attestation's row and its provenance's (without ``attestation_id``), checked."""
    where = f"layer {att.layer_digest}"
    row = {
        "attachment_digest": digest,
        "layer_digest": att.layer_digest,
        "predicate_type": att.statement.predicate_type,
        "subject_digests": _subject_digests(att.statement),
        "statement": _statement_json(att.statement),
    }
    check_columns(_lengths(_ATTESTATIONS), row, where)
    if att.provenance is None:
        return row, None
    p = att.provenance
    provenance = {
        "builder_id": p.builder_id,
        "build_type": p.build_type,
        "source_uri": p.source_uri,
        "source_digest": p.source_digest,
        "source_ref": p.source_ref,
        "entry_point": p.entry_point,
    }
    check_columns(_lengths(_PROVENANCE), provenance, where)
    return row, provenance


def _insert_attestations(
    connection: Connection, rows: list[tuple[dict[str, Any], dict[str, Any] | None]]
) -> None:
    """Attestations, then the provenance of those that have one, each kind in one statement."""
    ids = insert_ids(connection, _ATTESTATIONS, [row for row, _ in rows], _DOCUMENT_KEY)
    provenance = [
        {**found, "attestation_id": attestation_id}
        for attestation_id, (_, found) in zip(ids, rows, strict=True)
        if found is not None
    ]
    if provenance:
        connection.execute(insert(_PROVENANCE), provenance)


def _stream_sbom(session: Session, digest: str, doc: SbomDoc, errors: list[str]) -> int:
    """Decode an SBOM too large to prepare and stream its packages in; 1 when it is recorded."""
    try:
        row, record = sbom_row(doc.layer_digest, doc.source, wrapped=doc.wrapped, columns=COLUMNS)
    except Exception as exc:  # the document's failure, whatever the decoder raised
        errors.append(sbom_failure(doc.layer_digest, exc))
        return 0
    sbom = Sbom(attachment_digest=digest, **row)
    session.add(sbom)
    session.flush()
    stored = 0
    batch: list[tuple[int, *PackageRow]] = []
    connection = session.connection()
    try:
        for package in package_rows(record, COLUMNS):
            batch.append((sbom.id, *package))
            if len(batch) >= _PACKAGE_BATCH:
                _insert_packages(connection, batch)
                stored += len(batch)
                batch = []
    except FormatError as exc:
        errors.append(packages_failure(doc.layer_digest, stored + len(batch), exc))
    if batch:
        _insert_packages(connection, batch)
        stored += len(batch)
    sbom.package_count = stored
    return 1
