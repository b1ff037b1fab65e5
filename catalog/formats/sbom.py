"""SBOMs (SPDX 2.x and CycloneDX JSON, bare or as an in-toto predicate), decoded in bounded memory.

Two passes over the source. The first reads the header (format, version, name, tools)
and checks the whole document's syntax and nesting; object keys may come in any order, so the
header is only known once the document has been read. ``SbomRecord.packages`` is the second pass:
each iteration re-reads the source from where it started and yields one package at a time, so
memory stays flat whatever the number of packages. The source must therefore be bytes or a
seekable binary stream, and it must stay open (and not be read elsewhere) while packages are read.
A document of at most ``SbomLimits.max_whole`` bytes is parsed whole once (C speed, under the
same depth limit) and both passes walk the parsed tree: the same decoders, the same errors (one
the whole parse refuses is streamed, to be refused where and as the stream refuses it).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from catalog.formats import _cyclonedx, _spdx, _tree, intoto
from catalog.formats import _json as j
from catalog.formats._limits import SbomLimits
from catalog.formats._reader import Event, Reader
from catalog.formats._stream import EventReader
from catalog.formats.records import PackageRecord, SbomFormat, SbomRecord, Subject

__all__ = ["SbomLimits", "decode_sbom", "decode_sbom_statement"]

_WHAT = "SBOM"
_PACKAGES_KEY: dict[SbomFormat, str] = {"spdx": "packages", "cyclonedx": "components"}
_SPDX_PREFIX = "SPDX-"
_CYCLONEDX = "CycloneDX"
_UNPARSED = object()


def decode_sbom(source: bytes | BinaryIO, *, limits: SbomLimits | None = None) -> SbomRecord:
    """A bare SPDX or CycloneDX JSON document, told apart by ``spdxVersion`` / ``bomFormat``."""
    return _decode(_Source(source), limits or SbomLimits(), statement=False)


def decode_sbom_statement(
    source: bytes | BinaryIO, *, limits: SbomLimits | None = None
) -> SbomRecord:
    """An in-toto Statement whose predicate is the SBOM (a DSSE payload, a BuildKit layer)."""
    return _decode(_Source(source), limits or SbomLimits(), statement=True)


class _Source:
    """Bytes, or a seekable stream rewound to where it stood, for each pass; a document of at
    most ``SbomLimits.max_whole`` bytes is parsed once, whole, and both passes walk the tree."""

    def __init__(self, source: bytes | BinaryIO) -> None:
        self._data = source if isinstance(source, bytes) else None
        self._stream = None if isinstance(source, bytes) else source
        if self._stream is not None and not self._stream.seekable():
            raise ValueError("an SBOM stream must be seekable: it is read once per pass")
        self._start = 0 if self._stream is None else self._stream.tell()
        self._tree: Any = _UNPARSED
        self._plain = False

    def open(self, limits: SbomLimits) -> Reader:
        if self._tree is _UNPARSED:
            self._tree = None
            if self._size() <= limits.max_whole:
                data = self._read()
                self._tree = _tree.parse(data, max_depth=limits.max_depth)
                self._plain = _tree.plain(data)
        if self._tree is not None and self._tree is not _tree.REFUSED:
            return _tree.TreeReader(self._tree, _WHAT, plain=self._plain)
        if self._stream is None:
            stream: BinaryIO = io.BytesIO(self._data or b"")
        else:
            stream = self._stream
            stream.seek(self._start)
        return EventReader(stream, _WHAT, max_depth=limits.max_depth)

    def _size(self) -> int:
        if self._stream is None:
            return len(self._data or b"")
        end = self._stream.seek(0, io.SEEK_END)
        self._stream.seek(self._start)
        return end - self._start

    def _read(self) -> bytes:
        if self._stream is None:
            return self._data or b""
        self._stream.seek(self._start)
        return self._stream.read()


@dataclass(slots=True)
class _Header:
    spdx_version: str | None = None
    bom_format: str | None = None
    spec_version: str | None = None
    name: str | None = None
    spdx_tools: tuple[str, ...] = ()
    cyclonedx_tools: tuple[str, ...] = ()
    component_name: str | None = None


def _decode(source: _Source, limits: SbomLimits, *, statement: bool) -> SbomRecord:
    reader = source.open(limits)
    event = reader.next("$")
    predicate_type = None
    subjects: tuple[Subject, ...] = ()
    if statement:
        header, statement_fields = _statement_header(reader, event, limits)
        _, predicate_type = intoto.header_from_json(
            statement_fields.get("_type"), statement_fields.get("predicateType")
        )
        subjects = intoto.subjects_from_json(statement_fields.get("subject"), "$.subject")
    else:
        header = _document_header(reader, event, "$", limits)
    reader.finish()
    sbom_format, spec_version = _detect(header, "$.predicate" if statement else "$")
    return SbomRecord(
        format=sbom_format,
        spec_version=spec_version,
        name=header.name if sbom_format == "spdx" else header.component_name,
        tools=header.spdx_tools if sbom_format == "spdx" else header.cyclonedx_tools,
        packages=_Packages(source, sbom_format, limits, statement=statement),
        predicate_type=predicate_type,
        subjects=subjects,
    )


def _statement_header(
    reader: Reader, event: Event, limits: SbomLimits
) -> tuple[_Header, dict[str, Any]]:
    reader.expect_object(event, "$")
    fields: dict[str, Any] = {}
    header = None
    for key, value in reader.fields("$"):
        path = f"$.{key}"
        if key == "predicate":
            header = _document_header(reader, value, path, limits)
        elif key in ("_type", "predicateType", "subject"):
            fields[key] = reader.value(value, path)
        else:
            reader.skip(value, path)
    if header is None:
        j.fail("$", "the statement has no predicate")
    return header, fields


def _document_header(reader: Reader, event: Event, path: str, limits: SbomLimits) -> _Header:
    reader.expect_object(event, path)
    header = _Header()
    for key, value in reader.fields(path):
        key_path = f"{path}.{key}"
        if key in ("spdxVersion", "bomFormat", "specVersion", "name"):
            text = reader.text(value, key_path, max_len=limits.max_text)
            if key == "spdxVersion":
                header.spdx_version = text
            elif key == "bomFormat":
                header.bom_format = text
            elif key == "specVersion":
                header.spec_version = text
            else:
                header.name = text
        elif key == "creationInfo" and value[0] != "null":
            header.spdx_tools = _spdx.tools(reader, value, key_path, limits)
        elif key == "metadata" and value[0] != "null":
            header.cyclonedx_tools, header.component_name = _cyclonedx.metadata(
                reader, value, key_path, limits
            )
        elif key in ("packages", "components") and value[0] != "null":
            # Checked now so that the package pass fails only on a package's own content.
            reader.expect_array(value, key_path)
            reader.skip(value, key_path)
        else:
            reader.skip(value, key_path)
    return header


def _detect(header: _Header, path: str) -> tuple[SbomFormat, str]:
    if header.spdx_version is not None and header.bom_format is not None:
        j.fail(path, "both spdxVersion and bomFormat: neither SPDX nor CycloneDX")
    if header.spdx_version is not None:
        if not header.spdx_version.startswith(_SPDX_PREFIX):
            j.fail(f"{path}.spdxVersion", f"not an SPDX version: {header.spdx_version!r}")
        return "spdx", header.spdx_version.removeprefix(_SPDX_PREFIX)
    if header.bom_format is not None:
        if header.bom_format != _CYCLONEDX:
            j.fail(f"{path}.bomFormat", f"not CycloneDX: {header.bom_format!r}")
        if header.spec_version is None:
            j.fail(path, "CycloneDX document without specVersion")
        return "cyclonedx", header.spec_version
    j.fail(path, "neither spdxVersion nor bomFormat: not an SPDX or CycloneDX JSON document")


class _Packages:
    """Re-iterable: each iteration is a fresh streaming pass over the source."""

    def __init__(
        self, source: _Source, sbom_format: SbomFormat, limits: SbomLimits, *, statement: bool
    ) -> None:
        self._source = source
        self._format: SbomFormat = sbom_format
        self._limits = limits
        self._statement = statement

    def __iter__(self) -> Iterator[PackageRecord]:
        reader = self._source.open(self._limits)
        path = "$"
        reader.next(path)
        if self._statement:
            # The header pass found the predicate, and found it to be an object.
            path = "$.predicate"
            _seek(reader, "$", "predicate")
        key = _PACKAGES_KEY[self._format]
        event = _seek(reader, path, key)
        if event is None or event[0] == "null":
            return
        if self._format == "spdx":
            yield from _spdx.packages(reader, event, f"{path}.{key}", self._limits)
        else:
            yield from _cyclonedx.components(reader, event, f"{path}.{key}", self._limits)


def _seek(reader: Reader, path: str, wanted: str) -> Event | None:
    """Skip the object's fields up to ``wanted`` and return its value's first event."""
    for key, event in reader.fields(path):
        if key == wanted:
            return event
        reader.skip(event, path)
    return None
