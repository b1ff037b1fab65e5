"""Rules on their own: repository globs, rewrites, referrer kinds, tag filters, semver ranges."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import pytest

from catalog.errors import InvalidArgument
from catalog.oci.globs import matcher
from replication.planner import is_attachment_tag
from replication.rules import ALL_KINDS, RepositoryFilter, Rewrite, Rule, TagFilter, parse_kinds
from replication.versions import VersionRange, tag_version

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("acme/**", ["acme/a", "acme/a/b/c"], ["acme", "acmex/a", "other/acme/a"]),
        ("acme/*", ["acme/a"], ["acme/a/b", "acme"]),
        ("**/api", ["api", "shop/api", "a/b/api"], ["shop/api2"]),
        ("a/**/b", ["a/b", "a/x/b", "a/x/y/b"], ["a/xb"]),
        ("shop/ap?", ["shop/api"], ["shop/apis", "shop/ap/i"]),
        ("**", ["x", "x/y"], []),
    ],
)
def test_repository_globs(pattern: str, matches: list[str], misses: list[str]) -> None:
    only = RepositoryFilter((pattern,))
    assert [m for m in matches if only.matches(m)] == matches
    assert [m for m in misses if only.matches(m)] == []


def test_repository_filter_excludes_and_names() -> None:
    selected = RepositoryFilter(("acme/**",), exclude=("acme/tmp/**", "acme/test-*"))
    assert selected.matches("acme/app")
    assert not selected.matches("acme/tmp/x")
    assert not selected.matches("acme/test-1")
    assert selected.named() is None
    assert RepositoryFilter(("shop/api", "shop/web"), exclude=("shop/web",)).named() == ["shop/api"]
    with pytest.raises(InvalidArgument):
        RepositoryFilter(())


@pytest.mark.parametrize(
    "name", ["shop/api", "a", "a/b/c/d", "", "x\ny", "\n", "trailing\n", "é/ü", "a\x00b", "\u2028"]
)
def test_every_repository_without_a_pattern_is_what_the_glob_matches(name: str) -> None:
    """``**`` alone is matched without RE2 (the common rule starts without loading it): the
    same names as its compiled pattern, with and without excludes."""
    assert RepositoryFilter().matches(name) == matcher(("**",)).fullmatches(name)
    assert RepositoryFilter(exclude=("shop/*",)).matches(name) == (
        matcher(("**",)).fullmatches(name) and name != "shop/api"
    )


def test_rewrite() -> None:
    assert Rewrite().apply("acme/app") == "acme/app"
    assert Rewrite(prefix="mirror/").apply("acme/app") == "mirror/acme/app"
    assert Rewrite(prefix="eu", strip="acme/").apply("acme/app") == "eu/app"
    with pytest.raises(InvalidArgument, match="invalid name"):
        Rewrite(prefix="Mirror").apply("acme/app")


def test_rewrite_by_pattern() -> None:
    teams = Rewrite(pattern=r"acme/(?P<team>[^/]+)/(.*)", replacement=r"mirror/\g<team>-\2")
    assert teams.apply("acme/web/api") == "mirror/web-api"
    assert teams.apply("acme/db/pg/main") == "mirror/db-pg/main"
    assert Rewrite(pattern=r"(.*)", replacement=r"eu/\1").apply("a/b") == "eu/a/b"
    assert Rewrite(pattern=r"(a)?b", replacement=r"x\1").apply("b") == "x"  # unmatched: empty
    assert not teams.identity
    assert Rewrite().identity
    assert not Rewrite(strip="acme").identity
    # The pattern must match the whole name: a name it does not match is an error for it.
    for name in ("acme/solo", "xacme/web/api", "other/acme/web/api"):
        with pytest.raises(InvalidArgument, match="does not match the rename pattern"):
            teams.apply(name)
    with pytest.raises(InvalidArgument, match="rewrites to an invalid name"):
        Rewrite(pattern=r"(.*)", replacement=r"\1/UPPER").apply("acme/app")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pattern": "(", "replacement": "x"}, "rename pattern '\\(': missing \\)"),
        ({"pattern": "(a)", "replacement": r"x\2"}, "invalid group reference 2"),
        ({"pattern": "(a)", "replacement": r"\g<team>"}, "unknown group name 'team'"),
        ({"pattern": "a", "replacement": r"\q"}, "bad escape"),
        ({"pattern": "a"}, "needs a replacement"),
        ({"pattern": "", "replacement": "x"}, "needs a pattern"),
        ({"replacement": "x"}, "needs a pattern"),
        ({"pattern": "(.*)", "replacement": r"\1", "prefix": "m"}, "not both"),
        ({"pattern": "(.*)", "replacement": r"\1", "strip": "acme"}, "not both"),
    ],
)
def test_bad_rename_is_refused_when_built(fields: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Rewrite(**fields)


def test_referrer_kinds() -> None:
    assert parse_kinds("all") == ALL_KINDS
    assert parse_kinds("none") == frozenset()
    assert parse_kinds("signatures, SBOMs") == {"signature", "sbom"}
    assert parse_kinds("attestation") == {"attestation"}
    for bad in ("", "all,none", "signatures,tattoos"):
        with pytest.raises(InvalidArgument):
            parse_kinds(bad)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("^1.2", ["1.2.0", "v1.9.9", "1.10.0"], ["1.1.9", "2.0.0", "1.3.0-rc.1", "1.10"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("~1.2.3", ["1.2.3", "1.2.10"], ["1.3.0", "1.2.2"]),
        ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
        ("1.x", ["1.0.0", "1.99.1"], ["2.0.0", "0.9.0"]),
        ("1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
        ("1.2.3", ["1.2.3", "v1.2.3"], ["1.2.4"]),
        (">=1.2 <2", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.0"]),
        (">= 1.2 < 2 || 3.x", ["1.5.0", "3.1.0"], ["2.1.0", "4.0.0"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        (">=2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0"], ["1.9.0", "2.1.0-rc.1"]),
        ("*", ["0.1.0", "10.0.0"], ["10", "latest"]),
    ],
)
def test_semver_ranges(text: str, inside: list[str], outside: list[str]) -> None:
    versions = VersionRange.parse(text)

    def admitted(tags: list[str]) -> list[str]:
        return [t for t in tags if (v := tag_version(t)) is not None and v in versions]

    assert admitted(inside) == inside
    assert admitted(outside) == []


def test_tag_filters() -> None:
    assert tag_version("latest") is None
    assert str(tag_version("v2.0.0-rc.1")) == "2.0.0-rc.1"
    both = TagFilter(globs=("v*", "1.*"), semver="^1")
    assert [t for t in ["v1.2.0", "1.3.0", "2.0.0", "v2.1.0", "latest"] if both.admits(t)] == [
        "v1.2.0",
        "1.3.0",
    ]
    assert TagFilter(regex=r"release-\d+").admits("release-12")
    assert not TagFilter(regex=r"release-\d+").admits("release-12-hotfix")
    for bad in ({"regex": "("}, {"semver": "^^1"}, {"semver": ">=1.2.3.4"}, {"newest": 0}):
        with pytest.raises(InvalidArgument):
            TagFilter(**bad)


def test_attachment_tags_are_not_images() -> None:
    for tag in (f"sha256-{HEX}", f"sha256-{HEX}.sig", f"sha256-{HEX}.att", f"sha256-{HEX}.sbom"):
        assert is_attachment_tag(tag)
    assert is_attachment_tag(f"sha512x9-{HEX}")  # any algorithm of [a-z0-9]
    for tag in ("latest", f"sha256-{HEX}.bak", f"sha256-{HEX[:10]}", "sha256-abc.sig"):
        assert not is_attachment_tag(tag)
    # An upper-case or missing algorithm, digits past 64, a suffix without its dot, another
    # dash: image tags. A trailing line end is no attachment either (the pattern's ``$`` took it).
    for tag in (
        f"SHA256-{HEX}",
        f"-{HEX}",
        f"sha256-{HEX}0",
        f"sha256-{HEX}sig",
        f"sha256-{HEX.upper()}",
        f"sha-256-{HEX}",
        f"sha256-{HEX}.sig.sig",
        f"sha256-{HEX}\n",
    ):
        assert not is_attachment_tag(tag), tag


def test_bracket_classes_are_refused_not_silently_literal() -> None:
    """The shared glob translation has no [...] classes: a rule using one would match nothing."""
    with pytest.raises(InvalidArgument, match=r"globs add \* \*\* and \?"):
        RepositoryFilter(include=("a/[bc]",))


@pytest.mark.parametrize(
    "value",
    [
        RepositoryFilter(include=("library/**",), exclude=("library/old",)),
        Rewrite(prefix="mirror/"),
        Rewrite(pattern="^a/(.*)$", replacement="b/$1"),
        TagFilter(globs=("v*",), semver=">=1.0.0", newest=3),
        Rule("a", "b", tags=TagFilter(globs=("v*",))),
    ],
    ids=["filter", "prefix", "rename", "tags", "rule"],
)
@pytest.mark.parametrize(
    "duplicate",
    [copy.copy, copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_rule_values_copy_and_pickle(value: object, duplicate: Callable[[object], object]) -> None:
    """Immutable (__setattr__ refuses), yet copied and pickled through the constructor."""
    again = duplicate(value)
    assert again == value
    assert hash(again) == hash(value)
