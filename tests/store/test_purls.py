"""Purl bases as the store keys them, and the bound on what their cache holds."""

from __future__ import annotations

from catalog.store import purls


def test_base_of_drops_version_and_qualifiers_and_refuses_what_does_not_parse() -> None:
    assert purls.base_of("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar") == (
        "pkg:maven/org.apache.logging.log4j/log4j-core"
    )
    assert purls.base_of("not a purl") is None


def test_a_long_purl_is_answered_but_not_remembered() -> None:
    # A hostile SBOM's purls may be 64 KiB each: 65,536 of them held would be gigabytes.
    long = "pkg:npm/" + "a" * 70_000 + "@1.0.0"
    short = "pkg:npm/test-purls-cache-entry@1.3.0"  # in no other test
    purls.base_cache.cache_clear()  # other tests may have filled it
    before = 0
    assert purls.base_of(long) == "pkg:npm/" + "a" * 70_000
    assert purls.base_cache.cache_info().currsize == before
    assert purls.base_of(short) == "pkg:npm/test-purls-cache-entry"
    assert purls.base_cache.cache_info().currsize == before + 1
