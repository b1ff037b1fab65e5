"""SBOMs recorded four ways give the same rows: decoded ahead (``SbomDoc.prepare``, package
rows built on the crawl's thread, or ``sbom_rows.prepare`` in a worker process), left to the
writer by the budget, or too large to parse whole and streamed into the database; a package
that cannot be read ends its list the same way. Package rows written straight to the driver
are the rows SQLAlchemy's JSON type wrote."""

from __future__ import annotations

import io
import json
import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Text, cast, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import FormatError
from catalog.formats import intoto
from catalog.oci.digest import Digest
from catalog.store import documents, sbom_rows
from catalog.store.documents import AttestationDoc, DecodedDocuments, SbomDoc
from catalog.store.grouped import GroupTransaction
from catalog.store.models import Attestation, Sbom, SbomPackage
from tests.harness.statements import recorded_statements

_DIGEST = "sha256:" + "9" * 64


def _spdx(count: int, *, bad_at: int | None = None, padding: int = 0) -> bytes:
    packages: list[dict[str, Any]] = [
        {
            "name": f"lib{i}",
            "versionInfo": f"1.{i}",
            "licenseConcluded": "MIT",
            "licenseDeclared": "Apache-2.0 OR Zlib-é",
            "externalRefs": [
                {"referenceType": "purl", "referenceLocator": f"pkg:npm/@scope/lib{i}@1.{i}"}
            ],
            "description": "x" * padding,
        }
        for i in range(count)
    ]
    if bad_at is not None:
        packages[bad_at]["versionInfo"] = 1
    return json.dumps({"spdxVersion": "SPDX-2.3", "name": "doc", "packages": packages}).encode()


# Every column but the ids, the licenses as the database holds their text.
_COLUMNS = (
    SbomPackage.purl,
    SbomPackage.purl_base,
    SbomPackage.type,
    SbomPackage.namespace,
    SbomPackage.name,
    SbomPackage.version,
    SbomPackage.licenses,
    cast(SbomPackage.licenses, Text).label("licenses_text"),
)


def _rows(session: Session, attachment: str) -> tuple[int, list[tuple[Any, ...]]]:
    sbom = session.scalars(select(Sbom).where(Sbom.attachment_digest == attachment)).one()
    packages = session.execute(
        select(*_COLUMNS).where(SbomPackage.sbom_id == sbom.id).order_by(SbomPackage.id)
    ).all()
    return sbom.package_count, [tuple(row) for row in packages]


def _in_a_process(digest: str, data: bytes) -> SbomDoc:
    doc = SbomDoc(digest, b"")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        doc.prepared = pool.submit(
            sbom_rows.prepare,
            digest,
            data,
            wrapped=False,
            budget=1024 * 1024,
            columns=documents.COLUMNS,
        ).result(timeout=120)
    return doc


def test_sboms_prepared_on_a_thread_in_a_process_budgeted_and_streamed_record_the_same_rows(
    sessions: sessionmaker[Session],
) -> None:
    small = _spdx(50, bad_at=40)
    large = _spdx(50, bad_at=40, padding=25_000)  # over 1 MiB: streamed, never parsed whole
    assert len(small) < 100_000 < 1024 * 1024 < len(large)
    prepared = SbomDoc("sha256:" + "1" * 64, io.BytesIO(small))
    prepared.prepare(budget=1024 * 1024)
    budgeted = SbomDoc("sha256:" + "2" * 64, io.BytesIO(small))
    budgeted.prepare(budget=10_000)  # a few rows' worth: the writer streams it
    streamed = SbomDoc("sha256:" + "3" * 64, io.BytesIO(large))
    in_process = _in_a_process("sha256:" + "5" * 64, small)
    assert prepared.prepared is not None
    assert len(prepared.prepared.packages) == 40
    assert in_process.prepared is not None
    assert in_process.prepared.packages == prepared.prepared.packages
    assert budgeted.prepared is None
    assert streamed.prepared is None

    held = {
        str(Digest.of(b"a%d" % n)): DecodedDocuments(sboms=[doc])
        for n, doc in enumerate([prepared, budgeted, streamed, in_process])
    }
    with sessions.begin() as session:
        counts = documents.store_all(session, held)
    assert list(counts.values()) == [1, 1, 1, 1]
    for docs in held.values():
        (error,) = docs.errors
        assert "packages after #40: " in error
        assert "packages[40].versionInfo" in error

    with sessions() as session:
        first, second, third, fourth = (_rows(session, digest) for digest in held)
    assert first == second == third == fourth
    count, rows = first
    assert count == 40
    licenses = ["MIT", "Apache-2.0 OR Zlib-é"]
    assert rows[0][:7] == (
        "pkg:npm/%40scope/lib0@1.0",
        "pkg:npm/%40scope/lib0",
        "npm",
        "@scope",
        "lib0",
        "1.0",
        licenses,
    )
    # The text is what SQLAlchemy's JSON type writes for the same row.
    with sessions.begin() as session:
        session.add(Sbom(attachment_digest=_DIGEST, layer_digest=_DIGEST, format="spdx"))
        session.flush()
        sbom_id = session.scalars(select(Sbom.id).where(Sbom.attachment_digest == _DIGEST)).one()
        values = dict(zip(sbom_rows.PACKAGE_COLUMNS, rows[0][:6], strict=False))
        session.execute(insert(SbomPackage), {**values, "licenses": licenses, "sbom_id": sbom_id})
    with sessions() as session:
        assert _rows(session, _DIGEST) == (0, [rows[0]])


def test_an_sbom_that_cannot_be_read_is_an_error_and_no_row(
    sessions: sessionmaker[Session],
) -> None:
    doc = SbomDoc("sha256:" + "4" * 64, b'{"spdxVersion": 2}')
    doc.prepare(budget=1024 * 1024)
    held = {str(Digest.of(b"b")): DecodedDocuments(sboms=[doc])}
    with sessions.begin() as session:
        assert documents.store_all(session, held) == {str(Digest.of(b"b")): 0}
    (error,) = held[str(Digest.of(b"b"))].errors
    assert error.startswith(f"layer {doc.layer_digest}: SBOM $.spdxVersion: expected a string")
    with sessions() as session:
        assert session.scalars(select(Sbom)).all() == []


def test_package_strings_any_driver_escape_would_touch_are_stored_as_they_are(
    sessions: sessionmaker[Session],
) -> None:
    """PostgreSQL's rows go in by ``COPY``, whose text format has its own escapes (tab, newline,
    backslash, ``\\N`` for NULL): what a document says is stored as it says it, on both."""
    odd = ["a\tb", "c\nd", "\\N", "back\\slash", "quote'\"", "é\u2028", "\r"]
    packages = [
        {"name": name, "versionInfo": name, "licenseConcluded": "MIT", "licenseDeclared": name}
        for name in odd
    ]
    data = json.dumps({"spdxVersion": "SPDX-2.3", "name": "doc", "packages": packages}).encode()
    doc = SbomDoc(_DIGEST, io.BytesIO(data))
    doc.prepare(budget=1024 * 1024)
    with sessions.begin() as session:
        documents.store_all(session, {_DIGEST: DecodedDocuments(sboms=[doc])})
    with sessions() as session:
        count, rows = _rows(session, _DIGEST)
    assert count == len(odd)
    assert [(row[4], row[5], row[6]) for row in rows] == [
        (name, name, ["MIT", name]) for name in odd
    ]


def test_package_rows_go_in_statements_of_a_few_fixed_sizes_in_order(
    sessions: sessionmaker[Session],
) -> None:
    """Whatever an SBOM's package count, SQLite's statements are of a dozen sizes at most
    (each compiled once per connection, then reused), and the rows keep their order."""
    counts = (1100, 37)
    docs = [SbomDoc("sha256:" + str(n) * 64, _spdx(count)) for n, count in enumerate(counts)]
    for doc in docs:
        doc.prepare(budget=1024 * 1024 * 1024)
    held = {str(Digest.of(b"s%d" % n)): DecodedDocuments(sboms=[d]) for n, d in enumerate(docs)}
    sizes: list[int] = []

    def executed(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.startswith("INSERT OR FAIL INTO sbom_packages"):
            sizes.append(len(parameters) // (1 + len(sbom_rows.PACKAGE_COLUMNS)))

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", executed)
    try:
        with sessions.begin() as session:
            documents.store_all(session, held)
    finally:
        event.remove(engine, "before_cursor_execute", executed)
    if engine.dialect.name == "sqlite":
        assert sum(sizes) == sum(counts)
        assert all(size & (size - 1) == 0 and size <= 1024 for size in sizes), sizes
    with sessions() as session:
        for digest, count in zip(held, counts, strict=True):
            stored, rows = _rows(session, digest)
            assert stored == count
            assert [row[4] for row in rows] == [f"lib{i}" for i in range(count)]


def test_a_package_rows_nones_are_stored_as_null_through_the_cheap_adapter(
    sessions: sessionmaker[Session],
) -> None:
    """On SQLite, None goes through the adapter the engine registers (the driver's own way costs
    ~2,000 more instructions a value); stored as NULL on both databases."""
    engine = sessions.kw["bind"]
    if engine.dialect.name == "sqlite":
        assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    doc = SbomDoc(
        "sha256:" + "7" * 64,
        json.dumps({"spdxVersion": "SPDX-2.3", "packages": [{"name": "bare"}]}).encode(),
    )
    doc.prepare(budget=1024 * 1024)
    digest = str(Digest.of(b"bare"))
    with sessions.begin() as session:
        documents.store_all(session, {digest: DecodedDocuments(sboms=[doc])})
    with sessions() as session:
        nulls = session.execute(
            select(
                SbomPackage.purl.is_(None),
                SbomPackage.type.is_(None),
                SbomPackage.namespace.is_(None),
                SbomPackage.version.is_(None),
                SbomPackage.purl_key.is_(None),
            ).where(SbomPackage.name == "bare")
        ).one()
    assert all(nulls)


def test_package_keys_anywhere_in_64_bits_are_stored_as_computed(
    sessions: sessionmaker[Session],
) -> None:
    """PostgreSQL's rows go in by a binary ``COPY``, whose integers are sent at the column's
    width: keys at both ends of the signed 64-bit range (a hash's sign bit set or not) and
    none are stored as the rows hold them."""
    low, high = -(2**63), 2**63 - 1
    row = {"layer_digest": _DIGEST, "format": "spdx", "spec_version": None, "tool": None}
    keys = [(low, high), (high, low), (None, 0)]
    packages: list[sbom_rows.PackageRow] = [
        ("pkg:npm/a@1", "pkg:npm/a", "npm", None, f"a{n}", "1", "[]", purl_key, name_key)
        for n, (purl_key, name_key) in enumerate(keys)
    ]
    doc = SbomDoc(_DIGEST, b"", prepared=sbom_rows.PreparedSbom({**row, "name": None}, packages))
    with sessions.begin() as session:
        documents.store_all(session, {_DIGEST: DecodedDocuments(sboms=[doc])})
    with sessions() as session:
        stored = session.execute(
            select(SbomPackage.purl_key, SbomPackage.name_key).order_by(SbomPackage.id)
        ).all()
    assert [tuple(key) for key in stored] == keys


def _write_syscalls() -> int:
    """This thread's write system calls so far (Linux)."""
    with open("/proc/thread-self/io") as io_counts:
        return next(int(line.split()[1]) for line in io_counts if line.startswith("syscw:"))


def test_a_groups_prepared_package_rows_go_in_after_the_unit_without_a_journal(
    sessions: sessionmaker[Session],
) -> None:
    """In a group's unit, prepared SBOMs' package rows are written once the unit has ended
    whole, outside its savepoint, and on SQLite as statements that cannot abort midway: no
    statement journal, so
    none of the pages they change is copied to a temporary file first (a multi-row INSERT in
    the unit's savepoint wrote ~3.5 times a row there). The rows are the same on both
    databases; a rolled-back unit leaves none."""
    engine = sessions.kw["bind"]

    def held(first: int) -> dict[str, DecodedDocuments]:
        docs = {}
        for n, count in enumerate((1500, 0, 1500), start=first):  # one SBOM without packages
            doc = SbomDoc("sha256:" + f"{n:064x}", _spdx(count))
            doc.prepare(budget=1024 * 1024 * 1024)
            docs[str(Digest.of(b"g%d" % n))] = DecodedDocuments(sboms=[doc])
        return docs

    with sessions.begin() as session:  # indexes of some pages, which the next rows change
        documents.store_all(session, held(0))
    group = GroupTransaction(sessions, units=100, seconds=60)
    written = held(10)
    with recorded_statements(engine) as statements:
        before = _write_syscalls()
        with group.unit() as session:
            documents.store_all(session, written, after_unit=group.after_unit)
        journal_writes = _write_syscalls() - before

    def failing() -> None:
        with group.unit() as session:
            documents.store_all(session, held(20), after_unit=group.after_unit)
            raise FormatError("the unit fails after the rows were handed over")

    with pytest.raises(FormatError):
        failing()
    group.commit()

    releases = [n for n, s in enumerate(statements) if s.startswith("RELEASE SAVEPOINT")]
    packages = [n for n, s in enumerate(statements) if "INTO sbom_packages" in s]
    if engine.dialect.name == "sqlite":
        assert journal_writes == 0
        assert min(packages) > max(releases), statements
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SbomPackage)) == 4 * 1500
        for digest, expected in zip(written, (1500, 0, 1500), strict=True):
            count, rows = _rows(session, digest)
            assert count == len(rows) == expected
            assert [row[4] for row in rows] == [f"lib{i}" for i in range(expected)]


@pytest.mark.parametrize("over", [0, 1])
def test_a_statement_keeps_its_predicate_up_to_256_kib_of_statement(
    sessions: sessionmaker[Session], over: int
) -> None:
    """The limit is the statement's size: the store never measures a predicate (a repr or dump
    of megabytes holds the GIL, and the event loop with it)."""

    def encoded(padding: int) -> bytes:
        return json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "x", "digest": {"sha256": "0" * 64}}],
                "predicateType": "https://example.test/p",
                "predicate": {"pad": "y" * padding},
            }
        ).encode()

    limit = 256 * 1024
    payload = encoded(limit - len(encoded(0)) + over)
    assert len(payload) == limit + over
    docs = DecodedDocuments()
    docs.attestations.append(
        AttestationDoc(str(Digest.of(payload)), intoto.decode_statement(payload), None)
    )
    with sessions.begin() as s:
        documents.store(s, _DIGEST, docs)
    with sessions() as s:
        kept = s.scalars(select(Attestation.statement)).one()
    assert kept["predicateType"] == "https://example.test/p"
    assert ("predicate" in kept) is (not over)
