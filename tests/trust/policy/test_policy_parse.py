"""Loading policies: every refusal names its line and reason; digests follow meaning."""

from __future__ import annotations

import textwrap

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from catalog.errors import ConfigError
from catalog.trust.policy.loading import (
    PolicyError,
    PolicySet,
    canonical_policy,
    load_policy_file,
    load_policy_set,
    policy_digest,
)
from tests.trust.policy.test_facts import COSIGN_PUB, COSIGN_PUB_FP, GENERATOR, GITHUB_ISSUER

# The PEM as one double-quoted YAML line (dedent cannot cope with a pasted multi-line block).
PEM_FLOW = COSIGN_PUB.strip().replace("\n", "\\n")


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str, **kwargs: object) -> PolicySet:
    return load_policy_set(yaml_text(text), source="policy.yaml", **kwargs)  # type: ignore[arg-type]


def refusal(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load(text, **kwargs)
    return str(caught.value).splitlines()


MINIMAL = """
    name: shop
    images: ["registry.acme.io/shop/**"]
    authorities:
      - name: github-actions
        keyless:
          issuer: https://token.actions.githubusercontent.com
          subject: https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.0
"""


def test_a_single_policy_loads_as_a_set_of_one_that_denies_the_unmatched() -> None:
    policy_set = load(MINIMAL)
    (policy,) = policy_set.policies
    assert policy_set.no_match == "deny"
    assert policy.name == "shop"
    assert policy.mode == "enforce"
    assert policy.threshold == 1  # the default with authorities
    assert policy.globs == ("registry.acme.io/shop/**",)
    assert policy_set.source == "policy.yaml"


def test_policy_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        load("name: x\n")


# --- every refusal, with its line -------------------------------------------------------------


def test_keyless_without_an_issuer() -> None:
    assert refusal(
        """
        name: shop
        description: the shop
        mode: enforce
        images:
          - registry.acme.io/shop/**
        authorities:
          - name: github-actions
            keyless:
              subject: https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1
        """
    ) == ["policy.yaml:8: authorities[0].keyless: give issuer or issuerRegExp"]


def test_keyless_with_both_subject_forms_and_without_any() -> None:
    lines = refusal(
        """
        name: shop
        images: ["**"]
        authorities:
          - name: a
            keyless:
              issuer: https://token.actions.githubusercontent.com
              subject: x
              subjectRegExp: "x.*"
          - name: b
            keyless:
              issuerRegExp: "https://token\\\\.actions\\\\.githubusercontent\\\\.com"
        """
    )
    assert lines == [
        "policy.yaml:5: authorities[0].keyless: give subject or subjectRegExp, not both",
        "policy.yaml:10: authorities[1].keyless: give subject or subjectRegExp",
    ]


def test_unknown_keys_are_refused_with_a_suggestion() -> None:
    lines = refusal(
        """
        name: shop
        images: ["**"]
        authorities:
          - name: a
            keyless:
              issuer: https://github.com/login/oauth
              subjectRegex: ".*@redhat\\\\.com"
        requireSBOM: true
        """
    )
    assert lines[0] == (
        "policy.yaml:7: authorities[0].keyless.subjectRegex: unknown key 'subjectRegex' "
        "(did you mean subjectRegExp?); expected one of: extensions, issuer, issuerRegExp, "
        "subject, subjectRegExp"
    )
    assert lines[1].startswith(
        "policy.yaml:8: requireSBOM: unknown key 'requireSBOM' (did you mean requireSbom?)"
    )


def test_a_misspelt_policies_key_is_pointed_at() -> None:
    lines = refusal(
        """
        noMatch: allow
        polices:
          - name: shop
        """
    )
    assert "policy.yaml:2: polices: unknown key 'polices' (did you mean policies?)" in lines[-1]


def test_bad_regular_expressions() -> None:
    assert refusal(
        """
        name: shop
        images: ["**"]
        authorities:
          - name: a
            keyless:
              issuerRegExp: "https://(token"
              subject: x
        """
    ) == [
        "policy.yaml:6: authorities[0].keyless.issuerRegExp: bad regular expression "
        "'https://(token': missing ): https://(token (RE2 syntax: no backreferences or "
        "look-around)"
    ]


@pytest.mark.parametrize(
    ("glob", "reason"),
    [
        ("registry.acme.io/shop/***", "use * (within one path segment) or ** (across segments)"),
        ("registry.acme.io/shop api", "' ' cannot appear in an image reference"),
        ("https://registry.acme.io/shop", "give HOST/REPOSITORY patterns, not URLs"),
        ("registry.acme.io//shop", "empty path segment"),
        ("registry.acme.io/[ab]pi", "'[' cannot appear in an image reference"),
        ("", "empty image glob"),
    ],
)
def test_bad_globs(glob: str, reason: str) -> None:
    lines = refusal(
        f"""
        name: shop
        images:
          - "registry.acme.io/**"
          - "{glob}"
        """
    )
    assert len(lines) == 1
    assert lines[0].startswith("policy.yaml:4: images[1]: ")
    assert reason in lines[0]


def test_images_are_required_and_not_empty() -> None:
    assert refusal("name: shop\nimages: []\n") == [
        "policy.yaml:2: images: List should have at least 1 item after validation, not 0"
    ]
    assert refusal("name: shop\n") == ["policy.yaml:1: images: required"]


def test_bad_pem_and_bad_fingerprint() -> None:
    lines = refusal(
        """
        name: legacy
        images: ["**"]
        authorities:
          - name: farm
            key:
              pem: |
                -----BEGIN PUBLIC KEY-----
                not base64 at all
                -----END PUBLIC KEY-----
          - name: old-farm
            key:
              fingerprint: sha256:c87a79018f
        """
    )
    assert lines == [
        "policy.yaml:6: authorities[0].key.pem: bad PEM: expected a public key "
        "(-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----)",
        "policy.yaml:12: authorities[1].key.fingerprint: bad fingerprint 'sha256:c87a79018f': "
        "give the sha256 of the key's SubjectPublicKeyInfo DER as 64 hex digits",
    ]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (rsa.generate_private_key(65537, 1024), "RSA key of 1024 bits is too small"),
        (ec.generate_private_key(ec.SECP224R1()), "unsupported elliptic curve secp224r1"),
    ],
)
def test_a_key_signatures_are_never_checked_with_is_refused_with_its_line(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, why: str
) -> None:
    # Refused when the policy is read, not at every check: the gate loads a stored policy's
    # keys only when a signature needs one.
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    flow = pem.decode().strip().replace("\n", "\\n")
    lines = refusal(
        f"""
        name: legacy
        images: ["**"]
        authorities:
          - name: farm
            key: {{pem: "{flow}"}}
        """
    )
    assert lines == [f"policy.yaml:5: authorities[0].key.pem: the key: {why}"]


def test_a_certificate_is_not_a_public_key() -> None:
    certificate = (
        "-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIUQ==\\n-----END CERTIFICATE-----"
    )
    lines = refusal(
        f"""
        name: legacy
        images: ["**"]
        authorities:
          - name: farm
            key: {{pem: "{certificate}"}}
        """
    )
    assert lines[0].startswith("policy.yaml:5: authorities[0].key.pem: bad PEM")


def test_key_needs_exactly_one_of_pem_and_fingerprint() -> None:
    lines = refusal(
        f"""
        name: legacy
        images: ["**"]
        authorities:
          - name: farm
            key:
              fingerprint: {COSIGN_PUB_FP}
              pem: "{PEM_FLOW}"
          - name: none
            key: {{}}
        """
    )
    assert lines == [
        "policy.yaml:5: authorities[0].key: give pem or fingerprint (exactly one)",
        "policy.yaml:9: authorities[1].key: give pem or fingerprint (exactly one)",
    ]


def test_an_authority_has_exactly_one_kind() -> None:
    lines = refusal(
        f"""
        name: mixed
        images: ["**"]
        authorities:
          - name: two
            key: {{fingerprint: {COSIGN_PUB_FP}}}
            pki: {{root: acme-corp}}
          - name: none
            requireTlog: true
        """
    )
    assert lines == [
        "policy.yaml:4: authorities[0]: give exactly one of keyless, key or pki",
        "policy.yaml:7: authorities[1]: give exactly one of keyless, key or pki",
    ]


def test_unknown_fulcio_extension() -> None:
    lines = refusal(
        f"""
        name: slsa
        images: ["**"]
        authorities:
          - name: generator
            keyless:
              issuer: {GITHUB_ISSUER}
              subject: {GENERATOR}
              extensions:
                github_repository: slsa-framework/example-package
        """
    )
    assert lines[0].startswith(
        "policy.yaml:5: authorities[0].keyless: unknown Fulcio extension 'github_repository'"
    )
    assert "github_workflow_repository" in lines[0]


def test_threshold_larger_than_the_authorities() -> None:
    assert refusal(
        f"""
        name: shop
        images: ["**"]
        authorities:
          - name: release-key
            key: {{fingerprint: {COSIGN_PUB_FP}}}
        threshold: 2
        """
    ) == ["policy.yaml:6: threshold: threshold 2 is larger than the number of authorities (1)"]


def test_attestation_naming_an_unknown_authority() -> None:
    assert refusal(
        f"""
        name: slsa
        images: ["**"]
        authorities:
          - name: slsa-generator
            keyless: {{issuer: "{GITHUB_ISSUER}", subject: "{GENERATOR}"}}
        attestations:
          - name: slsa
            predicateType: https://slsa.dev/provenance/v0.2
            authorities:
              - slsa-generator
              - slsa-genrator
        """
    ) == [
        "policy.yaml:11: attestations[0].authorities[1]: unknown authority 'slsa-genrator' "
        "(known: slsa-generator)"
    ]


def test_attestation_without_any_authority_to_check_it() -> None:
    assert refusal(
        """
        name: slsa
        images: ["**"]
        attestations:
          - name: slsa
            predicateType: https://slsa.dev/provenance/v0.2
        """
    ) == [
        "policy.yaml:4: attestations[0]: the policy has no authorities to verify this "
        "attestation with"
    ]


def test_conditions_take_one_form_per_field() -> None:
    lines = refusal(
        f"""
        name: slsa
        images: ["**"]
        authorities:
          - name: g
            keyless: {{issuer: "{GITHUB_ISSUER}", subject: "{GENERATOR}"}}
        attestations:
          - name: slsa
            predicateType: https://slsa.dev/provenance/v0.2
            conditions:
              sourceRef: refs/tags/v1
              sourceRefRegExp: refs/tags/.*
              commit: abc
        """
    )
    assert lines[0].startswith(
        "policy.yaml:12: attestations[0].conditions.commit: unknown key 'commit'"
    )
    assert "buildType, buildTypeRegExp, builderId, builderIdRegExp, entryPoint" in lines[0]


def test_duplicate_names() -> None:
    lines = refusal(
        f"""
        noMatch: deny
        policies:
          - name: shop
            images: ["registry.acme.io/shop/**"]
            authorities:
              - name: k
                key: {{fingerprint: {COSIGN_PUB_FP}}}
              - name: k
                pki: {{root: acme-corp}}
          - name: shop
            images: ["**"]
        """
    )
    assert lines == [
        "policy.yaml:8: policies[0].authorities[1].name: authority name 'k' is already used "
        "by authorities[0]",
        "policy.yaml:10: policies[1].name: policy name 'shop' is already used by policy 0",
    ]


def test_the_same_signer_twice_is_refused() -> None:
    assert refusal(
        f"""
        name: shop
        images: ["**"]
        authorities:
          - name: farm
            key: {{fingerprint: {COSIGN_PUB_FP}}}
          - name: farm-again
            key: {{fingerprint: "SHA256:{COSIGN_PUB_FP.upper()}"}}
        threshold: 2
        """
    ) == ["policy.yaml:6: authorities[1]: authority 'farm-again' repeats authorities[0]"]


def test_pki_roots_are_checked_when_known() -> None:
    text = """
        name: corp
        images: ["**"]
        authorities:
          - name: security-team
            pki:
              root: acme-corp
        """
    assert load(text).policies[0].authorities[0].trust_root == "pki:acme-corp"  # not checked
    assert load(text, pki_roots={"acme-corp"}).policies[0].threshold == 1
    assert refusal(text, pki_roots=["other", "legacy"]) == [
        "policy.yaml:6: authorities[0].pki.root: unknown PKI root 'acme-corp' "
        "(known: legacy, other)"
    ]


def test_types_are_strict() -> None:
    lines = refusal(
        """
        name: shop
        mode: audit
        images: ["**"]
        authorities:
          - name: a
            keyless: {issuer: "https://github.com/login/oauth", subject: 123}
        threshold: "1"
        requireSbom: maybe
        """
    )
    assert lines == [
        "policy.yaml:2: mode: Input should be 'enforce' or 'warn'",
        "policy.yaml:6: authorities[0].keyless.subject: Input should be a valid string",
        "policy.yaml:7: threshold: Input should be a valid integer",
        "policy.yaml:8: requireSbom: Input should be a valid boolean",
    ]


def test_negative_threshold_and_bad_names() -> None:
    lines = refusal(
        """
        name: "shop prod"
        images: ["**"]
        threshold: -1
        """
    )
    assert lines[0].startswith("policy.yaml:1: name: bad name 'shop prod'")
    assert lines[1] == "policy.yaml:3: threshold: Input should be greater than or equal to 0"


def test_set_level_errors_carry_the_policy_index() -> None:
    lines = refusal(
        """
        noMatch: maybe
        policies:
          - name: ok
            images: ["**"]
          - name: broken
            images: ["**"]
            authorities:
              - name: a
                keyless:
                  subject: mitr@redhat.com
        """
    )
    assert lines == [
        "policy.yaml:1: noMatch: Input should be 'allow' or 'deny'",
        "policy.yaml:9: policies[1].authorities[0].keyless: give issuer or issuerRegExp",
    ]


def test_yaml_problems() -> None:
    assert refusal("name: shop\nimages: [a, b\n") == [
        "policy.yaml:3: not valid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence)"
    ]
    assert refusal("name: shop\nimages: ['**']\nname: other\n") == [
        "policy.yaml:3: name: duplicate key 'name' (first at line 1)"
    ]
    assert refusal("") == ["policy.yaml:1: empty document: expected a policy"]
    assert refusal("- name: shop\n") == [
        "policy.yaml:1: expected a mapping (a policy or a policy set)"
    ]
    assert refusal("name: a\n---\nname: b\n") == [
        "policy.yaml:2: not valid YAML: but found another document "
        "(expected a single document in the stream)"
    ]
    assert refusal("name: shop\n1: x\nimages: ['**']\n") == [
        "policy.yaml:2: mapping key 1 must be a string"
    ]


def test_alias_bombs_are_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("name: bomb")
    (line,) = refusal("\n".join(lines) + "\n")
    assert line == "policy.yaml:5: more than 100000 values once its aliases are expanded"


def test_anchors_and_merge_keys_work() -> None:
    policy_set = load(
        f"""
        noMatch: deny
        policies:
          - name: a
            images: ["registry.acme.io/a/**"]
            authorities: &release
              - name: release
                keyless: &generator
                  issuer: {GITHUB_ISSUER}
                  subject: {GENERATOR}
          - name: b
            images: ["registry.acme.io/b/**"]
            authorities:
              - name: release
                keyless:
                  <<: *generator
                  subject: https://github.com/acme/b/.github/workflows/release.yml@refs/tags/v1
        """
    )
    a, b = policy_set.policies
    subject_a, subject_b = a.authorities[0].subject, b.authorities[0].subject
    issuer_b = b.authorities[0].issuer
    assert subject_a is not None
    assert subject_a.exact == GENERATOR
    assert subject_b is not None
    assert subject_b.exact == (
        "https://github.com/acme/b/.github/workflows/release.yml@refs/tags/v1"
    )
    assert issuer_b is not None
    assert issuer_b.exact == GITHUB_ISSUER  # merged in from the anchor


def test_all_problems_are_reported_in_file_order() -> None:
    lines = refusal(
        """
        name: shop
        images: ["registry.acme.io/shop/***"]
        authorities:
          - name: a
            keyless: {issuerRegExp: "(", subject: x}
        unknown: 1
        """
    )
    assert [line.split(":")[1] for line in lines] == ["2", "5", "6"]


def test_missing_files_and_non_utf8(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    with pytest.raises(PolicyError, match=r"missing\.yaml:1: cannot read"):
        load_policy_file(root / "missing.yaml")
    (root / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(PolicyError, match=r"latin1\.yaml:1: not UTF-8 text"):
        load_policy_file(root / "latin1.yaml")


# --- canonical form and digest ----------------------------------------------------------------


def test_same_meaning_same_digest() -> None:
    compact = load(
        f"""
        name: legacy
        images: [registry.acme.io/legacy/**]
        authorities: [{{name: farm, key: {{fingerprint: {COSIGN_PUB_FP}}}}}]
        """
    )
    pem_block = "".join(f"          {line}\n" for line in COSIGN_PUB.splitlines())
    spelled_out = load_policy_set(
        "# Comments, key order, explicit defaults and PEM layout do not change the meaning.\n"
        "authorities:\n"
        "  - key:\n"
        "      pem: |\n"
        f"{pem_block}"
        "    name: farm\n"
        "    requireTlog: false\n"
        "threshold: 1\n"
        "mode: enforce\n"
        "requireSbom: false\n"
        "images:\n"
        '  - "registry.acme.io/legacy/**"\n'
        "name: legacy\n"
    )
    assert spelled_out.policies[0].authorities[0].fingerprint == COSIGN_PUB_FP
    # The PEM and the fingerprint name the same key, but say it differently: they may differ.
    assert canonical_policy(spelled_out) != canonical_policy(compact)
    reindented = load(
        f"""
        name: legacy
        images: [registry.acme.io/legacy/**]
        authorities:
          - name: farm
            key:
              pem: "\\n{PEM_FLOW}\\n\\n"
        """
    )
    assert policy_digest(reindented) == policy_digest(spelled_out)
    assert reindented.canonical == spelled_out.canonical
    compact_again = load(
        f"""
        noMatch: deny
        policies:
          - name: legacy
            images: [registry.acme.io/legacy/**]
            authorities:
              - name: farm
                key:
                  fingerprint: SHA256:{COSIGN_PUB_FP.upper()}
            threshold: 1
        """
    )
    assert policy_digest(compact_again) == policy_digest(compact)
    assert compact.digest.startswith("sha256:")
    assert len(compact.digest) == 71


def test_different_meaning_different_digest() -> None:
    base = load(MINIMAL)
    warn = load_policy_set(yaml_text(MINIMAL) + "mode: warn\n")
    first, *rest = yaml_text(MINIMAL).splitlines()
    item = "\n".join([f"  - {first}", *(f"    {line}" for line in rest)])
    allow = load_policy_set(f"noMatch: allow\npolicies:\n{item}\n")
    assert len({base.digest, warn.digest, allow.digest}) == 3
    assert base.policies[0].digest != warn.policies[0].digest
    assert allow.policies[0].digest == base.policies[0].digest  # the policy itself is the same


def test_canonical_form_loads_back_to_the_same_digest() -> None:
    policy_set = load(MINIMAL)
    again = load_policy_set(canonical_policy(policy_set), source="stored")
    assert again.digest == policy_set.digest
    assert again.canonical == policy_set.canonical
