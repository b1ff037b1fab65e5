"""Package look-ups by key: the keys are stable, strings sharing a key are told apart, and
hostile strings store and look up the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import InvalidArgument
from catalog.oci.digest import Digest
from catalog.store import documents, package_keys, queries
from catalog.store.documents import DecodedDocuments, SbomDoc
from catalog.store.models import Attachment, SbomPackage
from catalog.store.package_keys import key_range, package_key

_SUBJECT = "sha256:" + "5" * 64
_ATTACHMENT = "sha256:" + "6" * 64


def test_keys_do_not_change() -> None:
    """Stored keys are compared with keys computed by later versions: a change to the function
    needs a migration re-keying every row."""
    assert package_key("pkg:npm/left-pad", "1.3.0") == -1454425268354367099
    assert package_key("left-pad", None) == -7111546952109522944
    assert package_key(None, "1.3.0") is None


def test_a_range_holds_a_head_with_any_version() -> None:
    low, high = key_range("pkg:pypi/requests")
    assert -(1 << 63) <= low < high < 1 << 63
    for version in (None, "1", "2.31.0", "é" * 255):
        assert low <= package_key("pkg:pypi/requests", version) <= high  # type: ignore[operator]
    assert not low <= package_key("pkg:pypi/requestz", "1") <= high  # type: ignore[operator]


def _store(sessions: sessionmaker[Session], packages: list[dict[str, Any]]) -> None:
    """An SBOM of these SPDX packages through the crawl's writer, attached to one subject."""
    doc = {"spdxVersion": "SPDX-2.3", "name": "doc", "packages": packages}
    sbom = SbomDoc(str(Digest.of(b"layer")), json.dumps(doc).encode())
    sbom.prepare(budget=1024 * 1024)
    with sessions.begin() as session:
        session.add(
            Attachment(
                subject_digest=_SUBJECT,
                attachment_digest=_ATTACHMENT,
                kind="sbom",
                scheme="referrers-api",
            )
        )
        documents.store_all(session, {_ATTACHMENT: DecodedDocuments(sboms=[sbom])})


def _package(name: str, version: str | None, purl: str | None = None) -> dict[str, Any]:
    package: dict[str, Any] = {"name": name}
    if version is not None:
        package["versionInfo"] = version
    if purl is not None:
        package["externalRefs"] = [{"referenceType": "purl", "referenceLocator": purl}]
    return package


def _found(session: Session, **query: str) -> list[tuple[str | None, str, str | None]]:
    page = queries.search_packages(session, size=100, **query)  # type: ignore[arg-type]
    return sorted((m.package.purl, m.package.name, m.package.version) for m in page.items)


def test_strings_sharing_a_key_are_told_apart(
    sessions: sessionmaker[Session], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(package_keys, "text_hash", lambda text: 0)  # every key the same
    monkeypatch.setattr(package_keys, "_hashes", {})  # read first, in line
    _store(
        sessions,
        [
            _package("a", "1", "pkg:npm/a@1"),
            _package("a", "2", "pkg:npm/a@2"),
            _package("b", "1", "pkg:npm/b@1"),
            _package("b", "2", "pkg:npm/b@2"),
            _package("c", None),
        ],
    )
    with engine.connect() as connection:
        keys = set(connection.execute(select(SbomPackage.purl_key, SbomPackage.name_key)))
    assert keys == {(0, 0), (None, 0)}  # the look-ups below meet every row by key
    with sessions() as session:
        assert _found(session, purl="pkg:npm/a@1") == [("pkg:npm/a@1", "a", "1")]
        assert _found(session, purl="pkg:npm/b") == [
            ("pkg:npm/b@1", "b", "1"),
            ("pkg:npm/b@2", "b", "2"),
        ]
        assert _found(session, name="b", version="2") == [("pkg:npm/b@2", "b", "2")]
        assert _found(session, name="a") == [("pkg:npm/a@1", "a", "1"), ("pkg:npm/a@2", "a", "2")]
        assert _found(session, name="c") == [(None, "c", None)]
        assert _found(session, name="c", version="1") == []


# At the columns' limits (characters, not bytes: PostgreSQL's varchar counts characters),
# outside ASCII, and in every UTF-8 length.
_LONG_NAME = "ж" * 512
_LONG_VERSION = "🎉" * 255
_HOSTILE = [
    _package(_LONG_NAME, _LONG_VERSION),
    _package("é漢字🎉", "1.0-ü", "pkg:npm/%C3%A9t%C3%A9@1.0-%C3%BC"),
    _package("space name", " 1 ", "pkg:generic/space%20name@%201%20"),
]


_STORED_PURL = "pkg:npm/%c3%a9t%c3%a9@1.0-%C3%BC"  # as the decoder normalises it


def test_hostile_strings_store_and_look_up_the_same(sessions: sessionmaker[Session]) -> None:
    _store(sessions, _HOSTILE)
    with sessions() as session:
        assert _found(session, name=_LONG_NAME, version=_LONG_VERSION) == [
            (None, _LONG_NAME, _LONG_VERSION)
        ]
        assert _found(session, name=_LONG_NAME) == [(None, _LONG_NAME, _LONG_VERSION)]
        assert _found(session, name=_LONG_NAME, version=_LONG_VERSION[:-1]) == []
        assert _found(session, name="é漢字🎉", version="1.0-ü") == [
            (_STORED_PURL, "é漢字🎉", "1.0-ü")
        ]
        # The purl as a person types it: the same base and version once parsed.
        assert _found(session, purl="pkg:npm/été@1.0-ü") == [(_STORED_PURL, "é漢字🎉", "1.0-ü")]
        assert [n for _, n, _ in _found(session, purl="pkg:generic/space%20name")] == ["space name"]
        assert _found(session, name="space name", version="1") == []
        assert _found(session, name=_LONG_NAME + "ж") == []  # longer than any stored: none


def test_rows_inserted_without_keys_get_them(sessions: sessionmaker[Session]) -> None:
    """An insert naming only the strings (as tests and tools write rows) is keyed all the same."""
    _store(sessions, [])
    with sessions.begin() as session:
        session.add(
            SbomPackage(
                sbom_id=1,
                purl="pkg:npm/x@2",
                purl_base="pkg:npm/x",
                name="x",
                version="2",
                licenses=[],
            )
        )
    with sessions() as session:
        assert _found(session, purl="pkg:npm/x@2") == [("pkg:npm/x@2", "x", "2")]
        assert _found(session, name="x") == [("pkg:npm/x@2", "x", "2")]


@pytest.mark.parametrize(
    "query",
    [
        {"name": "a\x00b"},
        {"name": "a", "version": "1\x00"},
        {"purl": "pkg:npm/a@1%00"},  # a NUL in the version once parsed
        {"name": "\udcff"},  # a command line's undecodable byte
        {"name": "a", "version": "\udcff"},
        {"purl": "pkg:npm/\udcff"},
    ],
)
def test_what_no_row_holds_is_refused_in_one_line(
    sessions: sessionmaker[Session], query: dict[str, str]
) -> None:
    with sessions() as session, pytest.raises(InvalidArgument) as refused:
        queries.search_packages(session, **query)  # type: ignore[arg-type]
    assert "\n" not in str(refused.value)
