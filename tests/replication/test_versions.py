"""SemVer 2.0 tags and npm ranges (replication/versions.py).

The range tables are a subset of npm's own test data, copied as data: npm/node-semver
test/fixtures/range-include.js and range-exclude.js (commit 6e05b76), the rows without options
(strict mode, no includePrerelease), each written as (range, version).
"""

from __future__ import annotations

import contextlib
import time

import pytest

from catalog.errors import InvalidArgument
from replication.rules import TagFilter
from replication.versions import VersionRange, tag_version

# npm/node-semver test/fixtures/range-include.js: the version satisfies the range.
NPM_INCLUDE = [
    ("1.0.0 - 2.0.0", "1.2.3"),
    ("^1.2.3+build", "1.2.3"),
    ("^1.2.3+build", "1.3.0"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3-pre.2"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "2.4.3-alpha"),
    ("1.0.0", "1.0.0"),
    (">=*", "0.2.4"),
    ("*", "1.2.3"),
    (">1.0.0", "1.1.0"),
    ("<=2.0.0", "1.9999.9999"),
    ("<2.0.0", "0.2.9"),
    (">= 1.0.0", "1.0.0"),
    ("<\t2.0.0", "0.2.9"),
    ("0.1.20 || 1.2.4", "1.2.4"),
    (">=0.2.3 || <0.0.1", "0.0.0"),
    ("||", "1.3.4"),
    ("2.x.x", "2.1.3"),
    ("1.2.x || 2.x", "2.1.3"),
    ("x", "1.2.3"),
    ("2.*.*", "2.1.3"),
    ("2", "2.1.2"),
    ("2.3", "2.3.1"),
    ("~0.0.1", "0.0.2"),
    ("~2.4", "2.4.5"),
    ("~>3.2.1", "3.2.2"),
    ("~> 1", "1.2.3"),
    ("~ 1.0.3", "1.0.12"),
    ("<1.2", "1.1.1"),
    ("~v0.5.4-pre", "0.5.5"),
    ("~v0.5.4-pre", "0.5.4"),
    ("=0.7.x", "0.7.2"),
    ("<=0.7.x", "0.6.2"),
    ("~1.2.1 >=1.2.3", "1.2.3"),
    ("~1.2.1 1.2.3 >=1.2.3", "1.2.3"),
    (">=1.2.1 >=1.2.3", "1.2.3"),
    ("^1.2.3", "1.8.1"),
    ("^0.1", "0.1.2"),
    ("^0.0.1", "0.0.1"),
    ("^1.2 ^1", "1.4.2"),
    ("^1.2.3-alpha", "1.2.3-pre"),
    ("^0.0.1-alpha", "0.0.1-beta"),
    ("^0.1.1-alpha", "0.1.1-beta"),
    ("^x", "1.2.3"),
    ("x - 1.0.0", "0.9.7"),
    ("1.x - x", "1.9.7"),
    ("<=7.x", "7.9.9"),
]

# npm/node-semver test/fixtures/range-exclude.js: the version does not satisfy the range.
NPM_EXCLUDE = [
    ("1.0.0 - 2.0.0", "2.2.3"),
    ("1.2.3+asdf - 2.4.3+asdf", "1.2.3-pre.2"),
    ("^1.2.3+build", "2.0.0"),
    ("^1.2.3", "1.2.3-pre"),
    ("^1.2", "1.2.0-pre"),
    (">1.2", "1.3.0-beta"),
    ("<=1.2.3", "1.2.3-beta"),
    ("=0.7.x", "0.7.0-asdf"),
    (">=1.0.0", "0.1.0"),
    ("<=2.0.0", "2.9999.9999"),
    ("0.1.20 || 1.2.4", "1.2.3"),
    (">=0.2.3 || <0.0.1", "0.2.2"),
    ("1.2.x || 2.x", "1.1.3"),
    ("2.*.*", "3.1.3"),
    ("2.3", "2.4.1"),
    ("~0.0.1", "0.1.0-alpha"),
    ("~2.4", "2.5.0"),
    ("~>3.2.1", "3.3.2"),
    ("~1.0", "1.1.0"),
    ("<1", "1.0.0"),
    ("~v0.5.4-beta", "0.5.4-alpha"),
    ("<0.7.x", "0.7.2"),
    ("=1.2.3", "1.2.3-beta"),
    ("^0.0.1", "0.0.2-alpha"),
    ("^1.2.3", "2.0.0-alpha"),
    ("^1.2", "1.1.9"),
    ("1 - 2", "2.0.0-pre"),
    ("1.0 - 2", "1.0.0-pre"),
    ("1.1.x", "1.1.0-a"),
    ("1.x", "1.2.0-a"),
    (">=1.0.0 <1.1.0", "1.1.0-pre"),
    (">=1.0.0 <1.1.0-pre", "1.1.0-pre"),
]


def _admits(text: str, tag: str) -> bool:
    version = tag_version(tag)
    assert version is not None, tag
    return version in VersionRange.parse(text)


@pytest.mark.parametrize(("text", "tag"), NPM_INCLUDE)
def test_npm_range_includes(text: str, tag: str) -> None:
    assert _admits(text, tag)


@pytest.mark.parametrize(("text", "tag"), NPM_EXCLUDE)
def test_npm_range_excludes(text: str, tag: str) -> None:
    assert not _admits(text, tag)


def test_tags_are_strict_semver() -> None:
    # Pre-releases are kept as SemVer writes them (PEP 440 would drop or rewrite them).
    assert str(tag_version("1.2.3-foo")) == "1.2.3-foo"
    assert str(tag_version("2.0.0-SNAPSHOT")) == "2.0.0-SNAPSHOT"
    assert str(tag_version("v2.0.0-rc.1")) == "2.0.0-rc.1"
    for not_a_version in (
        "01.2.3",
        "1.02.3",
        "1.2.3.4",
        "1.2",
        "3",
        "latest",
        " 1.2.3",
        "=1.2.3",
        "1.2.3-",
        "1.2.3-a..b",
        "99999999999999999.0.0",
    ):
        assert tag_version(not_a_version) is None, not_a_version


def test_precedence_is_semver() -> None:
    tags = ["1.10.0", "1.2.0", "1.2.0-rc.10", "1.2.0-rc.2", "1.2.0-SNAPSHOT", "v1.9.0"]
    # Numeric identifiers compare as numbers (rc.2 < rc.10), others in ASCII order.
    ordered = sorted(tags, key=lambda t: tag_version(t))  # type: ignore[arg-type,return-value]
    assert ordered == ["1.2.0-SNAPSHOT", "1.2.0-rc.2", "1.2.0-rc.10", "1.2.0", "v1.9.0", "1.10.0"]
    assert tag_version("1.0.0+build.1") == tag_version("1.0.0+build.2")


def test_snapshot_and_named_prereleases_match_their_own_range() -> None:
    assert TagFilter(semver=">=2.0.0-SNAPSHOT <2.0.0").admits("2.0.0-SNAPSHOT")
    assert not TagFilter(semver="^2").admits("2.0.0-SNAPSHOT")
    assert TagFilter(semver="~1.2.3-foo").admits("1.2.3-foo")
    assert not TagFilter(semver="^1.2").admits("1.2")  # a moving alias, not a version


@pytest.mark.parametrize("text", ["", "  ", ">=>1", "abc", "^^1", "1.2.3 ->= 4", "1 - ", "01.2.3"])
def test_bad_ranges_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        VersionRange.parse(text)
    assert "\n" not in str(caught.value)


@pytest.mark.timing
def test_hostile_ranges_stay_fast() -> None:
    for text in [
        "<" * 255,
        "1." * 127,
        "~" * 254 + "1",
        "1 - " * 63,
        "x" * 255,
        "||" * 127,
        "1.2.3-" + "a." * 124,
        " " * 254 + "1",
    ]:
        started = time.monotonic()
        with contextlib.suppress(InvalidArgument):
            VersionRange.parse(text)
        assert time.monotonic() - started < 0.05, text
