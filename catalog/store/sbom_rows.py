"""An SBOM's rows as plain data: its ``sboms`` row and its package rows, built from its bytes.

No SQLAlchemy here: a crawl may build these in a worker process (``catalog.index``'s SBOM
preparer), which imports only this module and the decoders. The column limits come from the
schema through :class:`Columns`, made once by the caller and handed over as plain data.
Package rows are tuples in :data:`PACKAGE_COLUMNS` order with the licenses as JSON text: cheap
to send between processes and what the database driver takes as they are.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NoReturn

from catalog.errors import FormatError
from catalog.formats.failures import decoder_failure
from catalog.formats.records import SbomRecord
from catalog.formats.sbom import decode_sbom, decode_sbom_statement
from catalog.memo import short_key_cache
from catalog.store.package_keys import row_keys
from catalog.store.purls import base_of

# The columns of ``sbom_packages`` a package row fills, in its order (``sbom_id`` comes first
# when it is written).
PACKAGE_COLUMNS = (
    "purl",
    "purl_base",
    "type",
    "namespace",
    "name",
    "version",
    "licenses",
    "purl_key",
    "name_key",
)
_NAME, _VERSION = 512, 255  # cut to their columns' lengths, not refused
PackageRow = tuple[
    str | None, str | None, str | None, str | None, str, str | None, str, int | None, int | None
]
# What a package row holds beside its strings' characters, at most (the tuple, the string
# objects): what a prepared SBOM's budget counts.
ROW_COST = 512


@dataclass(frozen=True, slots=True)
class Columns:
    """The length limits of the string columns an SBOM's rows fill: ``sboms`` by name, package
    rows by position in :data:`PACKAGE_COLUMNS`."""

    sbom: tuple[tuple[str, int], ...]
    package: tuple[tuple[int, int], ...]


@dataclass(slots=True)
class PreparedSbom:
    """An SBOM decoded ahead of the writer: its ``sboms`` row (without ``attachment_digest``
    and ``package_count``), its package rows and why its package list ended early; or why it
    could not be read at all (``failure``, and no row)."""

    row: dict[str, Any] | None = None
    packages: list[PackageRow] = field(default_factory=list)
    package_error: str | None = None
    failure: str | None = None


def check_columns(limits: Iterable[tuple[str, int]], values: dict[str, Any], what: str) -> None:
    """Refuse (``FormatError``) a string longer than its column: PostgreSQL would fail the whole
    transaction, and with it every other document of the repository."""
    for name, length in limits:
        value = values.get(name)
        if isinstance(value, str) and len(value) > length:
            _too_long(what, name, value, length)


def _too_long(what: str, name: str, value: str, length: int) -> NoReturn:
    raise FormatError(f"{what}: {name} of {len(value)} characters is over the limit of {length}")


def decode(source: BinaryIO | bytes, *, wrapped: bool) -> SbomRecord:
    return (decode_sbom_statement if wrapped else decode_sbom)(source)


def sbom_row(
    layer_digest: str, source: BinaryIO | bytes, *, wrapped: bool, columns: Columns
) -> tuple[dict[str, Any], SbomRecord]:
    """The SBOM's header decoded into its ``sboms`` row."""
    record = decode(source, wrapped=wrapped)
    row = {
        "layer_digest": layer_digest,
        "format": record.format,
        "spec_version": record.spec_version,
        "tool": ", ".join(record.tools)[:1000] or None,
        "name": record.name,
    }
    check_columns(columns.sbom, row, "SBOM")
    return row, record


def package_rows(record: SbomRecord, columns: Columns) -> Iterator[PackageRow]:
    """The SBOM's package rows in order; a ``FormatError`` ends them. Whatever the decoder
    raises reaches the caller as a ``FormatError``, so that a database error (which is not the
    document's) stays apart from a decoding one. One loop from the decoder's packages to
    checked rows: it runs once per package of every SBOM."""
    checked = columns.package
    packages = iter(record.packages)
    count = 0
    while True:
        try:
            purl, _, kind, namespace, name, version, licenses, _, _ = next(packages)
        except StopIteration:
            return
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(decoder_failure(exc)) from None
        if not name:
            continue
        count += 1
        base = base_of(purl) if purl else None
        name = _shared(name[:_NAME])
        version = _shared(version[:_VERSION]) if version else None
        purl_key, name_key = row_keys(base, name, version)
        row: PackageRow = (
            purl,
            base,
            kind,
            namespace,
            name,
            version,
            _licenses_json(licenses),
            purl_key,
            name_key,
        )
        for position, length in checked:  # as check_columns, by position: per row
            value = row[position]
            if isinstance(value, str) and len(value) > length:
                _too_long(f"package #{count}", PACKAGE_COLUMNS[position], value, length)
        yield row


def _shared(text: str) -> str:
    """One string object for each short name or version (interned, as long as a row holds it):
    the rows of a batch then share them, and a batch's pickle writes each once and refers to it
    after (the crawl's process, which reads it back, builds each once). SBOMs repeat most names
    and versions; a hostile SBOM's long ones are not interned."""
    return sys.intern(text) if len(text) <= _SHARED_LENGTH else text


_SHARED_LENGTH = 64


def _json_list(licenses: tuple[str, ...]) -> str:
    return json.dumps(list(licenses))


# As SQLAlchemy's JSON type writes it (``json.dumps``), on SQLite and PostgreSQL. Cached:
# ``json.dumps`` costs more than the rest of a package row, and packages share few license sets
# (sets of at most 256 characters: ~1 MiB held in all).
_licenses_json, _licenses_cache = short_key_cache(
    _json_list, most=4096, longest=256, size=lambda licenses: sum(map(len, licenses))
)


def sbom_failure(layer_digest: str, exc: Exception) -> str:
    return f"layer {layer_digest}: {decoder_failure(exc)}"


def packages_failure(layer_digest: str, stored: int, exc: FormatError) -> str:
    return f"SBOM {layer_digest}: packages after #{stored}: {exc}"


def prepare(
    layer_digest: str, data: BinaryIO | bytes, *, wrapped: bool, budget: int, columns: Columns
) -> PreparedSbom | None:
    """Decode the SBOM and build its rows, or ``None`` when the package rows would take more
    than ``budget`` bytes (the writer streams it then). Either way the outcome (rows, errors)
    is the same."""
    try:
        row, record = sbom_row(layer_digest, data, wrapped=wrapped, columns=columns)
    except Exception as exc:  # the document's failure, whatever the decoder raised
        return PreparedSbom(failure=sbom_failure(layer_digest, exc))
    prepared = PreparedSbom(row)
    cost = 0
    try:
        for package in package_rows(record, columns):
            cost += ROW_COST + sum(map(len, filter(None, package[:7])))  # its strings
            if cost > budget:
                return None
            prepared.packages.append(package)
    except FormatError as exc:
        prepared.package_error = packages_failure(layer_digest, len(prepared.packages), exc)
    return prepared
