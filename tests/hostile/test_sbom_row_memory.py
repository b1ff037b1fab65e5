"""Package rows remember the JSON of short licence sets only: a hostile SBOM's long licence
strings, one set per package, must not pile up in a worker's cache."""

from __future__ import annotations

import sys

from catalog.formats.records import PackageRecord, SbomRecord
from catalog.store import sbom_rows
from catalog.store.documents import COLUMNS


def _sbom(licenses: list[tuple[str, ...]]) -> SbomRecord:
    packages = [
        PackageRecord(None, None, None, None, f"p{i}", "1", sets, None, None)
        for i, sets in enumerate(licenses)
    ]
    return SbomRecord("spdx", "SPDX-2.3", "hostile", (), packages)


def test_long_licence_sets_are_not_kept() -> None:
    cache = sbom_rows._licenses_cache
    cache.cache_clear()
    long_sets: list[tuple[str, ...]] = [(f"{i}-" + "L" * 60_000,) for i in range(200)]
    rows = list(sbom_rows.package_rows(_sbom(long_sets), COLUMNS))
    assert [row[6] for row in rows] == [f'["{s[0]}"]' for s in long_sets]
    assert cache.cache_info().currsize == 0

    short: list[tuple[str, ...]] = [("MIT",), ("Apache-2.0", "MIT")] * 100
    rows = list(sbom_rows.package_rows(_sbom(short), COLUMNS))
    assert rows[1][6] == '["Apache-2.0", "MIT"]'
    assert cache.cache_info().currsize == 2


def _interned(text: str | None) -> bool:
    """Whether ``text`` is the interned string: interning an equal copy gives it back."""
    assert text is not None
    return sys.intern("".join(text)) is text


def test_long_names_and_versions_are_not_kept() -> None:
    """Rows share one object for each short name and version (a batch's pickle writes it
    once); a hostile SBOM's long ones are not remembered."""
    packages = [
        PackageRecord(
            None, None, None, None, f"{i}-" + "N" * 500, f"{i}." + "V" * 200, (), None, None
        )
        for i in range(200)
    ]
    rows = list(sbom_rows.package_rows(SbomRecord("spdx", "2.3", "h", (), packages), COLUMNS))
    assert [row[4] for row in rows] == [p.name for p in packages]
    assert not any(_interned(row[4]) or _interned(row[5]) for row in rows)

    first = list(sbom_rows.package_rows(_sbom([("MIT",)] * 3), COLUMNS))
    again = list(sbom_rows.package_rows(_sbom([("MIT",)] * 3), COLUMNS))
    assert all(a[4] is b[4] and a[5] is b[5] for a, b in zip(first, again, strict=True))
