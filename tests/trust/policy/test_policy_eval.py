"""Evaluating policies: authorities, thresholds, attestations, SBOMs, modes, sets, evidence."""

from __future__ import annotations

import textwrap

from catalog.trust.policy.facts import Decision, Evidence, ImageFacts
from catalog.trust.policy.loading import PolicySet, evaluate, load_policy_set
from tests.trust.policy.test_facts import (
    COSIGN2_PUB_FP,
    COSIGN_PUB,
    COSIGN_PUB_FP,
    EXAMPLE_PACKAGE,
    GENERATOR,
    GITHUB_ISSUER,
    GITHUB_OAUTH,
    IMAGE,
    MITR,
    OTHER_IMAGE,
    SLSA_ATT_MANIFEST,
    SLSA_V02,
    image,
    key,
    keyless,
    mitr,
    pki,
    provenance,
    slsa_attestation,
)

SHOP = "registry.acme.io/shop/api:1.4"
GENERATOR_RE = (
    r"https://github\.com/slsa-framework/slsa-github-generator/\.github/workflows/"
    r"generator_container_slsa3\.yml@refs/tags/v[0-9.]+"
)


def policy(
    body: str, *, head: str = "name: shop\nimages: ['registry.acme.io/shop/**']\n"
) -> PolicySet:
    return load_policy_set(head + textwrap.dedent(body).lstrip("\n"), source="test.yaml")


GITHUB_ACTIONS = f"""
authorities:
  - name: github-actions
    keyless:
      issuer: {GITHUB_ISSUER}
      subject: {GENERATOR}
"""


def check(policy_set: PolicySet, facts: ImageFacts) -> Decision:
    decision = evaluate(policy_set, facts, policy_version=7)
    assert decision.digest == facts.digest
    assert decision.policy_version == 7
    return decision


# --- keyless ----------------------------------------------------------------------------------


def test_keyless_exact_identity_allows_with_evidence() -> None:
    decision = check(policy(GITHUB_ACTIONS), image(signatures=(keyless(),)))
    assert decision == Decision(
        allowed=True,
        digest=IMAGE,
        policy="shop",
        policy_version=7,
        mode="enforce",
        reasons=(),
        evidence=(
            Evidence(
                rule="authority github-actions",
                attachment_digest="sha256:" + "a1" * 32,
                method="keyless",
                identity=GENERATOR,
                issuer=GITHUB_ISSUER,
                key_fingerprint=None,
                log_index=80008005,
                integrated_time=1711017244,
            ),
        ),
    )


def test_another_identity_is_denied_saying_what_was_found() -> None:
    decision = check(policy(GITHUB_ACTIONS), image(signatures=(mitr(),)))
    assert not decision.allowed
    assert decision.reasons == (
        f"no verified signature from authority github-actions (found: 1 signature by {MITR}, "
        f"issuer {GITHUB_OAUTH})",
    )
    assert decision.evidence == ()


def test_no_signatures_at_all() -> None:
    decision = check(policy(GITHUB_ACTIONS), image())
    assert decision.reasons == (
        "no verified signature from authority github-actions (found: no signatures)",
    )


def test_unverified_signatures_are_ignored() -> None:
    bad = keyless(verified=False, reason="certificate expired before the Rekor entry was made")
    decision = check(policy(GITHUB_ACTIONS), image(signatures=(bad, mitr(verified=False))))
    assert not decision.allowed
    assert decision.reasons == (
        "no verified signature from authority github-actions (found: no verified signatures; "
        "2 unverified, ignored: certificate expired before the Rekor entry was made; "
        "certificate chain does not lead to a trusted root)",
    )


def test_signatures_for_another_digest_are_ignored() -> None:
    elsewhere = keyless(signed=(OTHER_IMAGE,))
    decision = check(policy(GITHUB_ACTIONS), image(signatures=(elsewhere,)))
    assert not decision.allowed
    assert decision.reasons == (
        "no verified signature from authority github-actions (found: no verified signatures; "
        "1 signed for another digest, ignored)",
    )


def test_keyless_regular_expressions_match_the_whole_value() -> None:
    by_regex = policy(
        f"""
        authorities:
          - name: slsa-generator
            keyless:
              issuerRegExp: 'https://token\\.actions\\.githubusercontent\\.com'
              subjectRegExp: '{GENERATOR_RE}'
        """
    )
    assert check(by_regex, image(signatures=(keyless(),))).allowed
    older = keyless(GENERATOR.replace("v1.10.0", "v1.9.0"))
    assert check(by_regex, image(signatures=(older,))).allowed
    from_a_branch = keyless(GENERATOR.replace("refs/tags/v1.10.0", "refs/heads/main"))
    assert not check(by_regex, image(signatures=(from_a_branch,))).allowed
    # Anchored: a fragment of the identity is not enough.
    fragment = policy(
        """
        authorities:
          - name: slsa-framework
            keyless:
              issuer: https://token.actions.githubusercontent.com
              subjectRegExp: 'https://github\\.com/slsa-framework'
        """
    )
    assert not check(fragment, image(signatures=(keyless(),))).allowed


def test_extensions_must_all_match_and_a_mismatch_is_spelled_out() -> None:
    with_extensions = policy(
        f"""
        authorities:
          - name: slsa-generator
            keyless:
              issuer: {GITHUB_ISSUER}
              subject: {GENERATOR}
              extensions:
                github_workflow_repository: slsa-framework/example-package
                source_repository_uri: {EXAMPLE_PACKAGE}
                github_workflow_ref: refs/heads/main
        """
    )
    decision = check(with_extensions, image(signatures=(keyless(),)))
    assert decision.reasons == (
        "no verified signature from authority slsa-generator (found: 1 signature by "
        f"{GENERATOR}, issuer {GITHUB_ISSUER} [for slsa-generator: extension "
        "github_workflow_ref is refs/tags/v13.0.30, not refs/heads/main])",
    )
    fixed = policy(
        f"""
        authorities:
          - name: slsa-generator
            keyless:
              issuer: {GITHUB_ISSUER}
              subject: {GENERATOR}
              extensions:
                github_workflow_repository: slsa-framework/example-package
                github_workflow_ref: refs/tags/v13.0.30
        """
    )
    assert check(fixed, image(signatures=(keyless(),))).allowed
    missing = keyless(extensions={"issuer": GITHUB_ISSUER})
    assert (
        "github_workflow_ref is missing, not refs/tags/v13.0.30"
        in check(fixed, image(signatures=(missing,))).reasons[0]
    )


# --- key and pki ------------------------------------------------------------------------------


def test_key_by_inline_pem_and_by_fingerprint() -> None:
    pem = COSIGN_PUB.strip().replace("\n", "\\n")
    by_pem = policy(f'authorities:\n  - name: farm\n    key: {{pem: "{pem}"}}\n')
    by_fingerprint = policy(
        f"authorities:\n  - name: farm\n    key: {{fingerprint: {COSIGN_PUB_FP}}}\n"
    )
    for policy_set in (by_pem, by_fingerprint):
        decision = check(policy_set, image(signatures=(key(),)))
        assert decision.allowed
        (evidence,) = decision.evidence
        assert evidence.method == "key"
        assert evidence.key_fingerprint == COSIGN_PUB_FP
        assert evidence.identity is None
        other_key = check(policy_set, image(signatures=(key(COSIGN2_PUB_FP),)))
        assert other_key.reasons == (
            f"no verified signature from authority farm (found: 1 signature by key "
            f"{COSIGN2_PUB_FP})",
        )
        # A keyless signature is not a key signature, whatever else it says.
        assert not check(policy_set, image(signatures=(keyless(),))).allowed


def test_require_tlog() -> None:
    strict = policy(
        f"""
        authorities:
          - name: farm
            key: {{fingerprint: {COSIGN2_PUB_FP}}}
            requireTlog: true
        """
    )
    offline = check(strict, image(signatures=(key(COSIGN2_PUB_FP),)))
    assert offline.reasons == (
        f"no verified signature from authority farm (found: 1 signature by key "
        f"{COSIGN2_PUB_FP} [for farm: no transparency-log entry (requireTlog)])",
    )
    logged = check(strict, image(signatures=(key(COSIGN2_PUB_FP, log_index=11608800),)))
    assert logged.allowed
    assert logged.evidence[0].log_index == 11608800
    assert logged.evidence[0].integrated_time == 1674251859


def test_pki_root() -> None:
    corp = policy("authorities:\n  - name: security-team\n    pki: {root: acme-corp}\n")
    decision = check(corp, image(signatures=(pki("acme-corp"),)))
    assert decision.allowed
    assert decision.evidence[0].identity == "CN=release-signer,O=Acme Corp"
    other = check(corp, image(signatures=(pki("partner"),)))
    assert other.reasons == (
        "no verified signature from authority security-team (found: 1 signature by "
        "CN=release-signer,O=Acme Corp under pki:partner)",
    )


# --- thresholds -------------------------------------------------------------------------------

THREE = f"""
authorities:
  - name: github-actions
    keyless: {{issuer: "{GITHUB_ISSUER}", subject: "{GENERATOR}"}}
  - name: release-key
    key: {{fingerprint: {COSIGN_PUB_FP}}}
  - name: security-team
    pki: {{root: acme-corp}}
threshold: 2
"""


def test_threshold_two_of_three() -> None:
    two_of_three = policy(THREE)
    both = check(two_of_three, image(signatures=(mitr(), keyless(), pki())))
    assert both.allowed
    assert [e.rule for e in both.evidence] == [
        "authority github-actions",
        "authority security-team",
    ]
    one = check(two_of_three, image(signatures=(keyless(), mitr())))
    assert one.reasons == (
        "verified signatures from 2 of authorities github-actions, release-key, security-team "
        "required, 1 satisfied (github-actions): no verified signature from authority "
        f"release-key or security-team (found: 2 signatures: by {GENERATOR}, issuer "
        f"{GITHUB_ISSUER}; by {MITR}, issuer {GITHUB_OAUTH})",
    )
    assert [e.rule for e in one.evidence] == ["authority github-actions"]  # kept when denied


def test_one_of_several_authorities() -> None:
    any_one = policy(THREE.replace("threshold: 2", "threshold: 1"))
    assert check(any_one, image(signatures=(key(),))).allowed
    assert check(any_one, image(signatures=(mitr(),))).reasons == (
        "no verified signature from authority github-actions or release-key or security-team "
        f"(found: 1 signature by {MITR}, issuer {GITHUB_OAUTH})",
    )


def test_one_signature_counts_for_one_authority() -> None:
    # Two authorities that both accept the generator: one signature must not meet a threshold
    # of two parties.
    overlapping = policy(
        f"""
        authorities:
          - name: generator
            keyless: {{issuer: "{GITHUB_ISSUER}", subject: "{GENERATOR}"}}
          - name: slsa-framework
            keyless:
              issuer: {GITHUB_ISSUER}
              subjectRegExp: 'https://github\\.com/slsa-framework/.+'
        threshold: 2
        """
    )
    decision = check(overlapping, image(signatures=(keyless(),)))
    assert not decision.allowed
    assert "slsa-framework (its signatures already count for another)" in decision.reasons[0]
    # A second signature the narrow authority cannot take goes to the broad one.
    other_workflow = keyless(
        "https://github.com/slsa-framework/example-package/.github/workflows/release.yml@refs/tags/v13.0.30",
        attachment="sha256:" + "99" * 32,
    )
    decision = check(overlapping, image(signatures=(keyless(), other_workflow)))
    assert decision.allowed
    assert {e.rule: e.attachment_digest for e in decision.evidence} == {
        "authority generator": "sha256:" + "a1" * 32,
        "authority slsa-framework": "sha256:" + "99" * 32,
    }
    # Broad authority first: it grabs the generator's signature, then must give it up to the
    # narrow one and take the other (an augmenting path), or a valid image would be denied.
    broad_first = policy(
        f"""
        authorities:
          - name: slsa-framework
            keyless:
              issuer: {GITHUB_ISSUER}
              subjectRegExp: 'https://github\\.com/slsa-framework/.+'
          - name: generator
            keyless: {{issuer: "{GITHUB_ISSUER}", subject: "{GENERATOR}"}}
        threshold: 2
        """
    )
    reassigned = check(broad_first, image(signatures=(keyless(), other_workflow)))
    assert reassigned.allowed
    assert {e.rule: e.attachment_digest for e in reassigned.evidence} == {
        "authority generator": "sha256:" + "a1" * 32,
        "authority slsa-framework": "sha256:" + "99" * 32,
    }


def test_threshold_zero_needs_no_signature() -> None:
    none_needed = policy(GITHUB_ACTIONS + "threshold: 0\n")
    decision = check(none_needed, image())
    assert decision.allowed
    assert decision.evidence == ()


def test_a_policy_without_requirements_allows_what_it_matches() -> None:
    allow_list = policy("description: an explicit allow-list entry\n")
    assert check(allow_list, image()).allowed


# --- attestations -----------------------------------------------------------------------------

SLSA = f"""
authorities:
  - name: slsa-generator
    keyless: {{issuer: "{GITHUB_ISSUER}", subjectRegExp: '{GENERATOR_RE}'}}
  - name: upstream
    keyless: {{issuer: "{GITHUB_OAUTH}", subject: "{MITR}"}}
threshold: 0
attestations:
  - name: slsa
    predicateType: {SLSA_V02}
    authorities: [slsa-generator]
    conditions:
      builderId: {GENERATOR}
      buildType: https://github.com/slsa-framework/slsa-github-generator/container@v1
      sourceRepository: {EXAMPLE_PACKAGE}
      sourceRefRegExp: 'refs/tags/v[0-9.]+'
      entryPointRegExp: '\\.github/workflows/.+\\.yml'
"""


def test_attestation_with_exact_and_regex_conditions() -> None:
    decision = check(policy(SLSA), image(attestations=(slsa_attestation(),)))
    assert decision.allowed
    assert decision.evidence == (
        Evidence(
            rule="attestation slsa",
            attachment_digest=SLSA_ATT_MANIFEST,
            method="keyless",
            identity=GENERATOR,
            issuer=GITHUB_ISSUER,
            key_fingerprint=None,
            log_index=80008005,
            integrated_time=1711017244,
        ),
    )


def test_attestation_exact_condition_mismatch() -> None:
    forged = slsa_attestation(
        provenance("https://github.com/evil/builder/.github/workflows/b.yml@v1")
    )
    decision = check(policy(SLSA), image(attestations=(forged,)))
    assert decision.reasons == (
        "attestation slsa: builderId https://github.com/evil/builder/.github/workflows/b.yml@v1 "
        f"does not match {GENERATOR}",
    )


def test_attestation_regex_condition_mismatch() -> None:
    from_branch = slsa_attestation(provenance(ref="refs/heads/main"))
    decision = check(policy(SLSA), image(attestations=(from_branch,)))
    assert decision.reasons == (
        "attestation slsa: sourceRef refs/heads/main does not match the regular expression "
        "refs/tags/v[0-9.]+",
    )


def test_any_attestation_may_satisfy_the_rule() -> None:
    from_branch = slsa_attestation(provenance(ref="refs/heads/main"))
    decision = check(policy(SLSA), image(attestations=(from_branch, slsa_attestation())))
    assert decision.allowed


def test_attestation_of_another_type_or_unverified() -> None:
    sbom = slsa_attestation(predicate_type="https://spdx.dev/Document")
    decision = check(policy(SLSA), image(attestations=(sbom,)))
    assert decision.reasons == (
        f"attestation slsa: no verified attestation of type {SLSA_V02} "
        "(found: 1 of other types: https://spdx.dev/Document)",
    )
    unverified = slsa_attestation(
        signature=keyless(verified=False, reason="DSSE signature does not verify")
    )
    decision = check(policy(SLSA), image(attestations=(unverified,)))
    assert decision.reasons == (
        f"attestation slsa: no verified attestation of type {SLSA_V02} "
        "(found: 1 unverified, ignored: DSSE signature does not verify)",
    )
    assert check(policy(SLSA), image()).reasons == (
        f"attestation slsa: no verified attestation of type {SLSA_V02} (found: no attestations)",
    )


def test_attestation_signed_by_another_authority() -> None:
    by_mitr = slsa_attestation(signature=mitr())
    decision = check(policy(SLSA), image(attestations=(by_mitr,)))
    assert decision.reasons == (
        f"attestation slsa: not signed by authority slsa-generator (found: signed by {MITR}, "
        f"issuer {GITHUB_OAUTH})",
    )


def test_attestation_authorities_default_to_any_of_the_policy() -> None:
    any_authority = policy(SLSA.replace("    authorities: [slsa-generator]\n", ""))
    assert check(any_authority, image(attestations=(slsa_attestation(signature=mitr()),))).allowed


def test_conditions_need_provenance() -> None:
    opaque = slsa_attestation()
    undecoded = type(opaque)(opaque.signature, opaque.predicate_type, None)
    decision = check(policy(SLSA), image(attestations=(undecoded,)))
    assert decision.reasons == ("attestation slsa: no SLSA provenance could be read from it",)
    without_conditions = policy(SLSA.split("    conditions:")[0])
    assert check(without_conditions, image(attestations=(undecoded,))).allowed


def test_attestation_signatures_do_not_count_towards_the_threshold() -> None:
    needs_signature = policy(SLSA.replace("threshold: 0", "threshold: 1"))
    decision = check(needs_signature, image(attestations=(slsa_attestation(),)))
    assert not decision.allowed
    assert decision.reasons[0].startswith(
        "no verified signature from authority slsa-generator or upstream (found: no signatures)"
    )
    assert [e.rule for e in decision.evidence] == ["attestation slsa"]


# --- SBOM -------------------------------------------------------------------------------------


def test_require_sbom() -> None:
    sbom_policy = policy(GITHUB_ACTIONS + "requireSbom: true\n")
    decision = check(sbom_policy, image(signatures=(keyless(),)))
    assert decision.reasons == ("no SBOM attached",)
    assert [e.rule for e in decision.evidence] == ["authority github-actions"]
    assert check(sbom_policy, image(signatures=(keyless(),), sboms=2)).allowed


def test_every_missing_piece_is_listed() -> None:
    everything = policy(SLSA.replace("threshold: 0", "threshold: 1") + "requireSbom: true\n")
    decision = check(everything, image(signatures=(keyless(verified=False, reason="bad"),)))
    assert decision.reasons == (
        "no verified signature from authority slsa-generator or upstream (found: no verified "
        "signatures; 1 unverified, ignored: bad)",
        f"attestation slsa: no verified attestation of type {SLSA_V02} (found: no attestations)",
        "no SBOM attached",
    )


# --- warn mode, noMatch, sets -----------------------------------------------------------------


def test_warn_mode_allows_and_keeps_the_denials_as_warnings() -> None:
    warn = policy(GITHUB_ACTIONS + "mode: warn\nrequireSbom: true\n")
    decision = check(warn, image(signatures=(mitr(),)))
    assert decision.allowed
    assert decision.mode == "warn"
    assert decision.reasons == (
        f"warning: no verified signature from authority github-actions (found: 1 signature by "
        f"{MITR}, issuer {GITHUB_OAUTH})",
        "warning: no SBOM attached",
    )
    passing = check(warn, image(signatures=(keyless(),), sboms=1))
    assert passing.allowed
    assert passing.mode == "warn"
    assert passing.reasons == ()
    assert [e.rule for e in passing.evidence] == ["authority github-actions"]


def test_no_match_denies_by_default_and_may_allow() -> None:
    shop_only = policy(GITHUB_ACTIONS)
    denied = check(shop_only, image("quay.io/containers/podman:v5", signatures=(keyless(),)))
    assert denied == Decision(
        allowed=False,
        digest=IMAGE,
        policy=None,
        policy_version=7,
        mode=None,
        reasons=("no policy applies to quay.io/containers/podman:v5 (noMatch: deny)",),
    )
    allowing = load_policy_set(
        "noMatch: allow\npolicies:\n  - name: shop\n    images: ['registry.acme.io/shop/**']\n"
    )
    allowed = check(allowing, image("quay.io/containers/podman:v5"))
    assert allowed.allowed
    assert allowed.policy is None
    assert allowed.mode is None
    assert allowed.reasons == (
        "warning: no policy applies to quay.io/containers/podman:v5 (noMatch: allow)",
    )
    unnamed = check(shop_only, image(None))
    assert unnamed.reasons == (f"no policy applies to {IMAGE} (noMatch: deny)",)


SET = f"""
noMatch: deny
policies:
  - name: baseline
    images: ["registry.acme.io/**"]
    authorities:
      - name: github-actions
        keyless: {{issuer: "{GITHUB_ISSUER}", subject: "{GENERATOR}"}}
  - name: shop-sbom
    images: ["registry.acme.io/shop/**"]
    requireSbom: true
  - name: shop-key
    mode: warn
    images: ["registry.acme.io/shop/*"]
    authorities:
      - name: release-key
        key: {{fingerprint: {COSIGN_PUB_FP}}}
"""


def test_every_matching_policy_must_allow() -> None:
    policy_set = load_policy_set(SET)
    everything = check(policy_set, image(signatures=(keyless(), key()), sboms=1))
    assert everything.allowed
    assert everything.policy == "baseline, shop-sbom, shop-key"
    assert everything.mode == "enforce"
    assert everything.reasons == ()
    assert [e.rule for e in everything.evidence] == [
        "baseline: authority github-actions",
        "shop-key: authority release-key",
    ]
    no_sbom = check(policy_set, image(signatures=(keyless(), key())))
    assert not no_sbom.allowed
    assert no_sbom.reasons == ("shop-sbom: no SBOM attached",)


def test_warn_policies_in_a_set_never_block() -> None:
    policy_set = load_policy_set(SET)
    without_key = check(policy_set, image(signatures=(keyless(),), sboms=1))
    assert without_key.allowed
    assert without_key.reasons == (
        "warning: shop-key: no verified signature from authority release-key (found: 1 "
        f"signature by {GENERATOR}, issuer {GITHUB_ISSUER})",
    )
    nothing = check(policy_set, image())
    assert not nothing.allowed
    assert nothing.reasons == (
        "baseline: no verified signature from authority github-actions (found: no signatures)",
        "shop-sbom: no SBOM attached",
        "warning: shop-key: no verified signature from authority release-key (found: no "
        "signatures)",
    )


def test_only_the_matching_policies_judge() -> None:
    policy_set = load_policy_set(SET)
    deep = check(policy_set, image("registry.acme.io/shop/team/api:2", signatures=(keyless(),)))
    assert deep.policy == "baseline, shop-sbom"
    outside = check(policy_set, image("registry.acme.io/billing/api:3", signatures=(keyless(),)))
    assert outside.allowed
    assert outside.policy == "baseline"
    assert [e.rule for e in outside.evidence] == ["authority github-actions"]  # one: no prefix


def test_evaluation_is_pure() -> None:
    policy_set = load_policy_set(SET)
    facts = image(signatures=(keyless(), mitr(verified=False)), sboms=1)
    first = evaluate(policy_set, facts)
    assert evaluate(policy_set, facts) == first
    assert first.policy_version is None
    assert facts == image(signatures=(keyless(), mitr(verified=False)), sboms=1)
