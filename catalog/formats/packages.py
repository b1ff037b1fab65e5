"""SBOM package records with canonical package URLs (packageurl-python)."""

from __future__ import annotations

from functools import lru_cache

from packageurl import PackageURL

from catalog.formats.records import PackageRecord

# SPDX writes these where a value is unknown or absent; they are not licenses or suppliers.
NOT_A_VALUE = frozenset({"NOASSERTION", "NONE", ""})


def package(
    *,
    raw_purl: str | None,
    name: str | None,
    version: str | None,
    licenses: tuple[str, ...],
    supplier: str | None,
    kind: str | None,
    group: str | None = None,
) -> PackageRecord:
    parsed = _parse(raw_purl)
    if parsed is None:
        return PackageRecord(
            purl=None,
            raw_purl=raw_purl,
            type=None,
            namespace=group,
            name=name,
            version=version,
            licenses=licenses,
            supplier=supplier,
            kind=kind,
        )
    purl, canonical = parsed
    return PackageRecord(
        purl=canonical,
        raw_purl=raw_purl,
        type=purl.type,
        namespace=purl.namespace or group,
        name=name or purl.name,
        version=version or purl.version,
        licenses=licenses,
        supplier=supplier,
        kind=kind,
    )


def _parse(text: str | None) -> tuple[PackageURL, str] | None:
    """The parsed purl and its canonical text, or ``None`` when the document's text is no purl."""
    if not text:
        return None
    return _parse_cached(text)


# Parsing is most of an SBOM's decoding cost, and images share most of their packages.
@lru_cache(maxsize=65536)
def _parse_cached(text: str) -> tuple[PackageURL, str] | None:
    try:
        purl = PackageURL.from_string(text)
        return purl, str(purl.to_string())
    except ValueError:  # e.g. syft's test snapshots write "a-purl-1"
        return None
