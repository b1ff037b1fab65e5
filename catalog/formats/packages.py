"""SBOM package records with canonical package URLs (packageurl-python)."""

from __future__ import annotations

from packageurl import PackageURL

from catalog.formats.records import PackageRecord
from catalog.memo import short_key_cache

# SPDX writes these where a value is unknown or absent; they are not licenses or suppliers.
NOT_A_VALUE = frozenset({"NOASSERTION", "NONE", ""})


def package(
    raw_purl: str | None,
    name: str | None,
    version: str | None,
    licenses: tuple[str, ...],
    supplier: str | None,
    kind: str | None,
    group: str | None = None,
) -> PackageRecord:
    """The record of a package the document describes so. Positional: it runs once per package
    of every SBOM, where keywords cost a fifth of it."""
    parsed = _parsed(raw_purl) if raw_purl else None
    if parsed is None:
        return PackageRecord(None, raw_purl, None, group, name, version, licenses, supplier, kind)
    canonical, kind_of, namespace, purl_name, purl_version = parsed
    return PackageRecord(
        canonical,
        raw_purl,
        kind_of,
        namespace or group,
        name or purl_name,
        version or purl_version,
        licenses,
        supplier,
        kind,
    )


def _parse(text: str) -> tuple[str, str | None, str | None, str | None, str | None] | None:
    """A purl's canonical text, type, namespace, name and version; ``None`` when the document's
    text is no purl."""
    try:
        purl = PackageURL.from_string(text)
    except ValueError:  # e.g. syft's test snapshots write "a-purl-1"
        return None
    return str(purl.to_string()), purl.type, purl.namespace, purl.name, purl.version


# Parsing is most of an SBOM's decoding cost, and images share most of their packages.
_parsed, _parsed_cache = short_key_cache(_parse, most=65536, longest=256)
