"""Package URLs as the store keys them: canonical form, and the version-less base."""

from __future__ import annotations

from functools import lru_cache

from packageurl import PackageURL

from catalog.errors import InvalidArgument


def parse_purl(text: str) -> PackageURL:
    try:
        return PackageURL.from_string(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid package URL {text!r}: {exc}") from None


def purl_base(purl: PackageURL) -> str:
    """``pkg:type/namespace/name``: what matches whatever the version and qualifiers."""
    return str(PackageURL(type=purl.type, namespace=purl.namespace, name=purl.name).to_string())


def base_of(purl: str) -> str | None:
    """The base of a purl string, None when it does not parse (cached: images share packages;
    not a purl longer than :data:`_CACHED_PURL`, or a hostile SBOM's 64 KiB purls would fill
    the cache's 65,536 entries with gigabytes)."""
    return _base_of(purl) if len(purl) > _CACHED_PURL else _cached_base_of(purl)


def _base_of(purl: str) -> str | None:
    try:
        return purl_base(PackageURL.from_string(purl))
    except ValueError:
        return None


_CACHED_PURL = 1024  # characters
_cached_base_of = lru_cache(maxsize=65536)(_base_of)
