"""ReDoS: every user-supplied regex and glob runs in time linear in its input (RE2), or is
refused when it is loaded; matched strings are capped.

With Python's ``re``, ``(a+)+@acme\\.com`` took 2 s on a 24-character identity (doubling per
character) and ``tags.regex: (a+)+`` with a 28-character tag froze the server; a 12-star glob
against 40 characters backtracked for over two minutes. Each case here must end within
:data:`BUDGET` on inputs of 10 KB and more.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import pytest

from catalog.errors import InvalidArgument
from catalog.oci.globs import matcher
from catalog.regex import MAX_PATTERN_LENGTH, compile_linear, template
from catalog.trust.policy.compiled import MAX_MATCHED_LENGTH
from catalog.trust.policy.errors import PolicyError
from catalog.trust.policy.loading import evaluate, load_policy_set
from replication.rules import MAX_NAME_LENGTH, MAX_TAG_LENGTH, RepositoryFilter, Rewrite, TagFilter
from replication.spec import parse_spec
from tests.trust.policy.test_facts import (
    GITHUB_ISSUER,
    image,
    keyless,
    provenance,
    slsa_attestation,
)

pytestmark = pytest.mark.timing

# "Milliseconds", with room for a loaded two-core machine; the backtracking cases take seconds
# to minutes on the same inputs.
BUDGET = 0.05
TEN_KB = 10 * 1024
T = TypeVar("T")


def timed(call: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    assert elapsed < BUDGET, f"took {elapsed * 1000:.1f} ms"
    return result


NESTED = r"(a+)+@acme\.com"
POLICY = f"""\
name: shop
images: ["registry.acme.io/shop/**"]
authorities:
  - name: acme
    keyless:
      issuer: {GITHUB_ISSUER}
      subjectRegExp: '{NESTED}'
"""


def test_nested_quantifier_pattern_is_linear_on_10_kb() -> None:
    pattern = compile_linear(NESTED)
    for text in ("a" * 24 + "!", "a" * TEN_KB + "!", "a" * (100 * TEN_KB) + "!"):
        assert timed(partial(pattern.fullmatches, text)) is False
    assert timed(lambda: pattern.fullmatches("a" * TEN_KB + "@acme.com")) is True


def test_policy_identity_regex_is_linear_and_identities_are_capped() -> None:
    policies = load_policy_set(POLICY, source="policy.yaml")

    def decide(identity: str) -> tuple[bool, tuple[str, ...]]:
        decision = evaluate(policies, image(signatures=(keyless(identity),)), policy_version=1)
        return decision.allowed, decision.reasons

    # The issue's case: 24 characters that do not match took 2 s.
    allowed, _ = timed(lambda: decide("a" * 24 + "!"))
    assert not allowed
    assert timed(lambda: decide("a" * 4000 + "@acme.com"))[0]
    # Over the cap: never matched, and the reason says why (not the 10 KB value itself).
    allowed, reasons = timed(lambda: decide("a" * TEN_KB + "@acme.com"))
    assert not allowed
    assert any(
        f"subject is {TEN_KB + 9} characters long (at most {MAX_MATCHED_LENGTH} are matched)" in r
        for r in reasons
    ), reasons
    assert all(len(r) < 1000 for r in reasons), "a reason carries the whole identity"


def test_provenance_condition_regex_is_linear() -> None:
    policies = load_policy_set(
        textwrap.dedent(
            f"""\
            name: shop
            images: ["registry.acme.io/shop/**"]
            authorities:
              - name: acme
                keyless: {{issuer: "{GITHUB_ISSUER}", subjectRegExp: '.*'}}
            threshold: 0
            attestations:
              - name: slsa
                predicateType: https://slsa.dev/provenance/v0.2
                conditions:
                  builderIdRegExp: '(x+x+)+y'
            """
        ),
        source="policy.yaml",
    )
    attestation = slsa_attestation(provenance("x" * 4000))
    decision = timed(
        lambda: evaluate(policies, image(attestations=(attestation,)), policy_version=1)
    )
    assert not decision.allowed
    assert any("builderId" in reason for reason in decision.reasons), decision.reasons


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a)\1@acme\.com", r"invalid escape sequence: \1"),  # backreference
        (r"(?=.*@acme\.com).*", "invalid perl operator: (?="),  # look-ahead
        (r".*(?<!evil)@acme\.com", "invalid perl operator: (?<"),  # look-behind
        (r"(?:a{1000}){1000}", "invalid repetition size: {1000}"),  # too large a program
        ("a" * (MAX_PATTERN_LENGTH + 1), f"characters long (at most {MAX_PATTERN_LENGTH})"),
    ],
)
@pytest.mark.parametrize(
    ("field", "at"),
    [
        ("subjectRegExp", "authorities[0].keyless.subjectRegExp"),
        ("issuerRegExp", "authorities[0].keyless.issuerRegExp"),
        ("sourceRefRegExp", "attestations[0].conditions.sourceRefRegExp"),
    ],
)
def test_policy_refuses_what_re2_does_not_accept(
    field: str, at: str, pattern: str, why: str
) -> None:
    if field == "sourceRefRegExp":
        body = f"""\
authorities:
  - name: acme
    keyless: {{issuer: x, subject: y}}
attestations:
  - name: slsa
    predicateType: https://slsa.dev/provenance/v0.2
    conditions:
      {field}: '{pattern}'
"""
    else:
        other = "subject: y" if field == "issuerRegExp" else "issuer: x"
        body = f"""\
authorities:
  - name: acme
    keyless:
      {other}
      {field}: '{pattern}'
"""
    with pytest.raises(PolicyError) as refused:
        load_policy_set(f'name: shop\nimages: ["**"]\n{body}', source="policy.yaml")
    (line,) = str(refused.value).splitlines()
    assert line.startswith("policy.yaml:"), line
    assert f": {at}: " in line, line
    assert why.split(" (")[0].split(":")[0] in line, line
    if "characters long" not in why:
        assert "(RE2 syntax: no backreferences or look-around)" in line


def test_tag_regex_is_linear_and_tags_are_capped() -> None:
    tags = TagFilter(regex="(a+)+")
    # The issue's case: one 28-character tag froze the server for 12 s.
    assert timed(lambda: tags.admits("a" * 28)) is True
    assert timed(lambda: tags.admits("a" * 27 + "!")) is False
    assert tags.admits("a" * MAX_TAG_LENGTH)
    assert not timed(lambda: tags.admits("a" * (MAX_TAG_LENGTH + 1)))  # not a tag: passes nothing
    assert not timed(lambda: tags.admits("a" * TEN_KB))
    assert not TagFilter().admits("a" * (MAX_TAG_LENGTH + 1))
    pattern = compile_linear("(a+)+")
    assert timed(lambda: pattern.fullmatches("a" * TEN_KB + "!")) is False
    # Tag globs go through fnmatch, whose translation does not backtrack on stars.
    globs = TagFilter(globs=("*a" * 12 + "b", "?*" * 40 + "b"))
    assert not timed(lambda: globs.admits("a" * MAX_TAG_LENGTH))


def test_rename_pattern_is_linear_and_names_are_capped() -> None:
    rename = Rewrite(pattern=r"((a|aa)+)/(.*)", replacement=r"mirror/\3")
    name = "a" * 200 + "/x"
    assert timed(lambda: rename.apply(name)) == "mirror/x"
    with pytest.raises(InvalidArgument, match="does not match the rename pattern"):
        timed(lambda: rename.apply("a" * 250 + "!"))
    with pytest.raises(InvalidArgument) as refused:
        timed(lambda: rename.apply("a" * TEN_KB))
    assert str(refused.value) == (
        f"a repository name of {TEN_KB} characters is not renamed (at most {MAX_NAME_LENGTH})"
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"tags": {"regex": r"(v\d+)\1"}},
            r"rule: tag regex '(v\\d+)\\1': invalid escape sequence: \1",
        ),
        (
            {"tags": {"regex": r"(?!rc).*"}},
            "tag regex '(?!rc).*': invalid perl operator: (?!",
        ),
        (
            {"rename": {"pattern": r"(?<=acme/)(.*)", "replacement": r"m/\1"}},
            "rename pattern '(?<=acme/)(.*)': invalid perl operator: (?<",
        ),
        (
            {"rename": {"pattern": "(.*)", "replacement": r"m/\2"}},
            r"rename replacement 'm/\\2': invalid group reference 2 ('(.*)' has 1 groups)",
        ),
        (
            {"tags": {"regex": "a" * (MAX_PATTERN_LENGTH + 1)}},
            f"tag regex '{'a' * (MAX_PATTERN_LENGTH + 1)}': the regular expression is "
            f"{MAX_PATTERN_LENGTH + 1} characters long",
        ),
    ],
)
def test_replication_rule_refuses_what_re2_does_not_accept(
    rule: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_spec({"name": "r", "source": "a", "destination": "b", **rule})
    text = str(refused.value)
    assert text.startswith("replication rule: "), text
    assert message in text, text
    assert "\n" not in text


def test_globs_are_linear() -> None:
    # Python's re backtracked for over two minutes on this glob against 40 characters.
    glob = "*a" * 12 + "b"
    assert timed(lambda: matcher([glob]).fullmatch("a" * TEN_KB)) is None
    repositories = RepositoryFilter(include=(glob,))
    assert timed(lambda: repositories.matches("a" * TEN_KB)) is False
    assert repositories.matches("a" * 12 + "b")
    policies = load_policy_set(
        f'name: shop\nimages: ["registry.acme.io/{glob}"]\n', source="policy.yaml"
    )
    decision = timed(
        lambda: evaluate(policies, image(f"registry.acme.io/{'a' * TEN_KB}"), policy_version=1)
    )
    assert decision.policy is None  # no policy applies: the glob did not match


def test_a_pattern_over_re2s_memory_budget_is_an_error_in_one_short_line() -> None:
    pattern = "|".join(f"(?:a{i}[^/]*x{{1,100}})" for i in range(20_000))
    with pytest.raises(ValueError, match="pattern too large") as refused:
        compile_linear(pattern, max_length=None)
    assert len(str(refused.value)) < 200  # the pattern is not quoted


def test_replacement_template() -> None:
    pattern = compile_linear(r"acme/(?P<team>[^/]+)/(.*)")
    found = pattern.fullmatch("acme/web/api")
    assert found is not None
    assert template(r"mirror/\g<team>-\2", pattern).expand(found) == "mirror/web-api"
    assert template(r"m/\g<1>\\x", pattern).expand(found) == "m/web\\x"
    for bad, why in (
        (r"\3", "invalid group reference 3"),
        (r"\g<nope>", "unknown group name 'nope'"),
        (r"\n", "bad escape at position 0"),
        ("x\\", "bad escape at position 1"),
    ):
        with pytest.raises(ValueError, match=why):
            template(bad, pattern)


def test_a_registrys_challenge_header_parses_in_linear_time() -> None:
    """``WWW-Authenticate`` is the registry's: a long run of word characters (or of
    unterminated quotes) made the parameter pattern fail once per position (0.5 s for 8 KB);
    a header past 4 KiB is no challenge at all."""
    from catalog.oci.auth import parse_challenge

    for header in ("Bearer " + "a" * 4000, "Bearer " + 'b="' * 1300, "Bearer " + "a=" * 1999):
        started = time.process_time()
        parse_challenge(header)
        assert time.process_time() - started < BUDGET, header[:20]
    assert parse_challenge("Bearer " + "a" * TEN_KB) is None
    assert parse_challenge('Bearer realm="https://auth/token",service="r"') == (
        "bearer",
        {"realm": "https://auth/token", "service": "r"},
    )
