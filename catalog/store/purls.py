"""Package URLs as the store keys them: canonical form, and the version-less base."""

from __future__ import annotations

from packageurl import PackageURL

from catalog.errors import InvalidArgument
from catalog.memo import short_key_cache


def parse_purl(text: str) -> PackageURL:
    try:
        return PackageURL.from_string(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid package URL {text!r}: {exc}") from None


def purl_base(purl: PackageURL) -> str:
    """``pkg:type/namespace/name``: what matches whatever the version and qualifiers."""
    return str(PackageURL(type=purl.type, namespace=purl.namespace, name=purl.name).to_string())


def _base_of(purl: str) -> str | None:
    try:
        return purl_base(PackageURL.from_string(purl))
    except ValueError:
        return None


# The base of a purl string, None when it does not parse (cached: images share packages).
base_of, base_cache = short_key_cache(_base_of, most=65536, longest=256)
