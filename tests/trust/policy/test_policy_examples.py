"""The documented examples (docs/examples/*.yaml) load and decide as docs/policy.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.trust.policy.facts import AttestationFacts
from catalog.trust.policy.loading import PolicyError, PolicySet, evaluate, load_policy_file
from tests.trust.policy.test_facts import (
    COSIGN2_PUB_FP,
    GITHUB_ISSUER,
    GITHUB_OAUTH,
    IMAGE,
    MITR,
    SLSA_REFERENCE,
    fixture_attestation,
    image,
    key,
    keyless,
    mitr,
    pki,
    provenance,
    slsa_attestation,
)

DOCS = Path(__file__).resolve().parents[3] / "docs"
EXAMPLES = DOCS / "examples"
PKI_ROOTS = {"acme-corp"}
TESTED = {"slsa-provenance.yaml", "key-signed.yaml", "production.yaml", "rollout-warn.yaml"}


def example(name: str) -> PolicySet:
    return load_policy_file(EXAMPLES / name, pki_roots=PKI_ROOTS)


def test_every_example_is_tested_and_documented() -> None:
    assert {p.name for p in EXAMPLES.glob("*.yaml")} == TESTED
    guide = (DOCS / "policy.md").read_text()
    for name in TESTED:
        assert f"examples/{name}" in guide


# --- slsa-provenance.yaml: the real slsa-github-generator attestation -------------------------


def test_slsa_example_accepts_the_real_generator_attestation() -> None:
    digest, attestation = fixture_attestation()
    decision = evaluate(
        example("slsa-provenance.yaml"), image(SLSA_REFERENCE, attestations=(attestation,))
    )
    assert decision.allowed, decision.reasons
    assert decision.digest == digest
    (evidence,) = decision.evidence
    assert evidence.rule == "attestation slsa"
    assert evidence.log_index == 80008005
    assert evidence.identity is not None
    assert "generator_container_slsa3.yml" in evidence.identity


def test_slsa_example_refuses_a_branch_build_and_a_personal_signature() -> None:
    policy_set = example("slsa-provenance.yaml")
    branch = slsa_attestation(provenance(ref="refs/heads/main"))
    decision = evaluate(policy_set, image(SLSA_REFERENCE, attestations=(branch,)))
    assert decision.reasons == (
        "attestation slsa: sourceRef refs/heads/main does not match the regular expression "
        "refs/tags/v.+",
    )
    personal = slsa_attestation(signature=mitr())
    decision = evaluate(policy_set, image(SLSA_REFERENCE, attestations=(personal,)))
    assert decision.reasons == (
        "attestation slsa: not signed by authority slsa-generator (found: signed by "
        f"{MITR}, issuer {GITHUB_OAUTH})",
    )


# --- key-signed.yaml ---------------------------------------------------------------------------


def test_key_example() -> None:
    policy_set = example("key-signed.yaml")
    legacy = "registry.acme.io/legacy/billing/worker:2019.4"
    assert evaluate(policy_set, image(legacy, signatures=(key(),))).allowed
    old_key_offline = evaluate(policy_set, image(legacy, signatures=(key(COSIGN2_PUB_FP),)))
    assert not old_key_offline.allowed
    assert "no transparency-log entry (requireTlog)" in old_key_offline.reasons[0]
    old_key_logged = key(COSIGN2_PUB_FP, log_index=11608800)
    assert evaluate(policy_set, image(legacy, signatures=(old_key_logged,))).allowed
    # tools/* is one level only
    assert evaluate(policy_set, image("registry.acme.io/tools/jq:1.7", signatures=(key(),))).allowed
    nested = evaluate(policy_set, image("registry.acme.io/tools/ci/jq:1.7", signatures=(key(),)))
    assert nested.reasons == (
        "no policy applies to registry.acme.io/tools/ci/jq:1.7 (noMatch: deny)",
    )


# --- production.yaml ---------------------------------------------------------------------------

SHOP_RELEASE = "https://github.com/acme/shop-api/.github/workflows/release.yml@refs/tags/v1.4.0"
RELEASE_EXTENSIONS = {
    "issuer": GITHUB_ISSUER,
    "github_workflow_trigger": "push",
    "github_workflow_repository": "acme/shop-api",
    "github_workflow_ref": "refs/tags/v1.4.0",
    "runner_environment": "github-hosted",
    "source_repository_uri": "https://github.com/acme/shop-api",
}


def shop_release_provenance() -> tuple[AttestationFacts, ...]:
    prov = provenance(
        "https://github.com/actions/runner/github-hosted",
        source="https://github.com/acme/shop-api",
        ref="refs/tags/v1.4.0",
        build_type="https://actions.github.io/buildtypes/workflow/v1",
        entry_point=".github/workflows/release.yml",
    )
    signature = keyless(
        SHOP_RELEASE, extensions=RELEASE_EXTENSIONS, attachment="sha256:" + "5a" * 32
    )
    return (
        slsa_attestation(
            prov, signature=signature, predicate_type="https://slsa.dev/provenance/v1"
        ),
    )


def test_production_shop_image_with_two_parties_provenance_and_sbom() -> None:
    policy_set = example("production.yaml")
    release = keyless(SHOP_RELEASE, extensions=RELEASE_EXTENSIONS)
    facts = image(
        "registry.acme.io/shop/api:1.4",
        signatures=(release, pki("acme-corp", log_index=90000001)),
        attestations=shop_release_provenance(),
        sboms=1,
    )
    decision = evaluate(policy_set, facts, policy_version=12)
    assert decision.allowed, decision.reasons
    assert decision.policy == "acme-baseline, shop-two-party"
    assert decision.policy_version == 12
    assert [e.rule for e in decision.evidence] == [
        "acme-baseline: authority acme-release",
        "shop-two-party: authority acme-release",
        "shop-two-party: authority security-team",
        "shop-two-party: attestation provenance",
    ]


def test_production_shop_image_with_one_party_is_denied() -> None:
    policy_set = example("production.yaml")
    release = keyless(SHOP_RELEASE, extensions=RELEASE_EXTENSIONS)
    offline_pki = pki("acme-corp")  # security-team requires a transparency-log entry
    facts = image(
        "registry.acme.io/shop/api:1.4",
        signatures=(release, offline_pki),
        attestations=shop_release_provenance(),
        sboms=1,
    )
    decision = evaluate(policy_set, facts)
    assert not decision.allowed
    assert decision.reasons == (
        "shop-two-party: verified signatures from 2 of authorities acme-release, security-team, "
        "release-key required, 1 satisfied (acme-release): no verified signature from authority "
        f"security-team or release-key (found: 2 signatures: by {SHOP_RELEASE}, issuer "
        f"{GITHUB_ISSUER}; by CN=release-signer,O=Acme Corp under pki:acme-corp [for "
        "security-team: no transparency-log entry (requireTlog)])",
    )


def test_production_third_party_images_only_warn_and_strangers_are_denied() -> None:
    policy_set = example("production.yaml")
    upstream = evaluate(policy_set, image("quay.io/containers/podman:v5.0"))
    assert upstream.allowed
    assert upstream.mode == "warn"
    assert upstream.reasons == (
        "warning: no verified signature from authority upstream-maintainer (found: no signatures)",
        "warning: no SBOM attached",
    )
    hub = evaluate(policy_set, image("ubuntu:24.04", signatures=(mitr(),), sboms=1))
    assert hub.allowed
    assert hub.reasons == ()
    stranger = evaluate(policy_set, image("ghcr.io/someone/tool:1"))
    assert not stranger.allowed
    assert stranger.policy is None


def test_production_example_needs_its_pki_root_configured() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_file(EXAMPLES / "production.yaml", pki_roots={"partner"})
    (problem,) = caught.value.problems
    assert problem.message == "unknown PKI root 'acme-corp' (known: partner)"
    text = (EXAMPLES / "production.yaml").read_text().splitlines()
    assert text[problem.line - 1].strip() == "root: acme-corp"


# --- rollout-warn.yaml -------------------------------------------------------------------------


def test_rollout_example_never_blocks() -> None:
    policy_set = example("rollout-warn.yaml")
    staging = evaluate(policy_set, image("registry.acme.io/staging/cart:0.3"))
    assert staging.allowed
    assert staging.mode == "warn"
    assert staging.reasons == (
        "warning: no verified signature from authority github-actions (found: no signatures)",
        "warning: no SBOM attached",
    )
    signed = keyless(
        "https://github.com/acme/shop-api/.github/workflows/release.yml@refs/heads/main",
        extensions={"github_workflow_repository": "acme/shop-api"},
    )
    candidate = evaluate(
        policy_set, image("registry.acme.io/shop/api:rc-2", signatures=(signed,), sboms=1)
    )
    assert candidate.allowed
    assert candidate.reasons == ()
    release = evaluate(policy_set, image("registry.acme.io/shop/api:1.4"))
    assert release.allowed
    assert release.policy is None
    assert release.reasons == (
        "warning: no policy applies to registry.acme.io/shop/api:1.4 (noMatch: allow)",
    )
    assert release.digest == IMAGE
