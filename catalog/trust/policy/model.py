"""The policy file's schema (pydantic): field names, types, and the checks one block can make.

Checks that need the whole policy (threshold against the number of authorities, attestations
naming authorities, unique names, known PKI roots) live in :func:`cross_checks`, which returns
each problem with its exact YAML path so the error can point at the offending line.
Keys are camelCase in YAML (``issuerRegExp``), snake_case here; models are strict, so ``"2"``
is not a number and ``123`` is not a subject.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel, to_snake

from catalog.regex import compile_linear
from catalog.trust._internal.keys import checked_key
from catalog.trust.errors import TrustRootError
from catalog.trust.policy.compiled import CONDITION_FIELDS
from catalog.trust.policy.errors import YamlPath
from catalog.trust.policy.image_globs import check_glob

# The Fulcio extension names ``catalog.formats.certs`` gives VerifiedSignature.extensions
# (fulcio docs/oid-info.md; v1 raw-string OIDs .1-.6, v2 DER OIDs .8 onwards).
FULCIO_EXTENSIONS = frozenset(
    {
        "issuer",
        "github_workflow_trigger",
        "github_workflow_sha",
        "github_workflow_name",
        "github_workflow_repository",
        "github_workflow_ref",
        "issuer_v2",
        "build_signer_uri",
        "build_signer_digest",
        "runner_environment",
        "source_repository_uri",
        "source_repository_digest",
        "source_repository_ref",
        "source_repository_identifier",
        "source_repository_owner_uri",
        "source_repository_owner_identifier",
        "build_config_uri",
        "build_config_digest",
        "build_trigger",
        "run_invocation_uri",
        "source_repository_visibility_at_signing",
        "deployment_environment",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def _regex(value: str) -> str:
    # RE2, linear in the input: a policy's pattern cannot stall the gate (catalog.regex).
    try:
        compile_linear(value)
    except ValueError as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    return value


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"bad name {value!r}: 1-63 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return value


def _text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _fingerprint(value: str) -> str:
    # Accept the ways people copy a fingerprint; store one spelling so digests agree.
    normalised = value.lower().removeprefix("sha256:").replace(":", "")
    if not _FINGERPRINT.match(normalised):
        raise ValueError(
            f"bad fingerprint {value!r}: give the sha256 of the key's SubjectPublicKeyInfo "
            "DER as 64 hex digits"
        )
    return normalised


def _pem(value: str) -> str:
    try:
        key = load_pem_public_key(value.strip().encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(
            "bad PEM: expected a public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----)"
        ) from None
    try:
        checked_key(key, "the key")
    except TrustRootError as exc:
        # Refused here, with its line, not at every check: the gate loads a stored policy's keys
        # only when a signature needs them.
        raise ValueError(str(exc)) from None
    # Re-serialised, so re-indenting the YAML block does not change the policy's digest.
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


Regex = Annotated[str, AfterValidator(_regex)]
Name = Annotated[str, AfterValidator(_name)]
Text = Annotated[str, AfterValidator(_text)]
Glob = Annotated[str, AfterValidator(check_glob)]


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, alias_generator=to_camel, validate_by_alias=True
    )


def _one_of(exact: str | None, regex: str | None, field: str) -> None:
    if exact is None and regex is None:
        raise ValueError(f"give {field} or {field}RegExp")
    if exact is not None and regex is not None:
        raise ValueError(f"give {field} or {field}RegExp, not both")


def _at_most_one(exact: str | None, regex: str | None, field: str) -> None:
    if exact is not None and regex is not None:
        raise ValueError(f"give {field} or {field}RegExp, not both")


class KeylessSpec(_Spec):
    issuer: Text | None = None
    issuer_reg_exp: Regex | None = None
    subject: Text | None = None
    subject_reg_exp: Regex | None = None
    extensions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> KeylessSpec:
        # Both are required: an issuer alone admits anyone with an account there.
        _one_of(self.issuer, self.issuer_reg_exp, "issuer")
        _one_of(self.subject, self.subject_reg_exp, "subject")
        unknown = sorted(set(self.extensions) - FULCIO_EXTENSIONS)
        if unknown:
            raise ValueError(
                f"unknown Fulcio extension {', '.join(map(repr, unknown))}; known: "
                + ", ".join(sorted(FULCIO_EXTENSIONS))
            )
        return self


class KeySpec(_Spec):
    pem: Annotated[str, AfterValidator(_pem)] | None = None
    fingerprint: Annotated[str, AfterValidator(_fingerprint)] | None = None

    @model_validator(mode="after")
    def _one(self) -> KeySpec:
        if (self.pem is None) == (self.fingerprint is None):
            raise ValueError("give pem or fingerprint (exactly one)")
        return self


class PkiSpec(_Spec):
    root: Name


class AuthoritySpec(_Spec):
    name: Name
    keyless: KeylessSpec | None = None
    key: KeySpec | None = None
    pki: PkiSpec | None = None
    require_tlog: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> AuthoritySpec:
        kinds = [k for k in ("keyless", "key", "pki") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of keyless, key or pki")
        return self


class ConditionsSpec(_Spec):
    """Conditions on the SLSA provenance an attestation carries; all given must hold."""

    builder_id: Text | None = None
    builder_id_reg_exp: Regex | None = None
    build_type: Text | None = None
    build_type_reg_exp: Regex | None = None
    source_repository: Text | None = None
    source_repository_reg_exp: Regex | None = None
    source_ref: Text | None = None
    source_ref_reg_exp: Regex | None = None
    entry_point: Text | None = None
    entry_point_reg_exp: Regex | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> ConditionsSpec:
        for label, _ in CONDITION_FIELDS:
            attribute = to_snake(label)
            _at_most_one(getattr(self, attribute), getattr(self, attribute + "_reg_exp"), label)
        return self


class AttestationSpec(_Spec):
    name: Name
    predicate_type: Text
    authorities: list[Name] | None = None  # None: any of the policy's authorities
    conditions: ConditionsSpec | None = None


_NAMESPACE_GLOB = re.compile(r"^[a-z0-9*?-]{1,63}$")
_LABEL_NAME = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([a-z0-9.-]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")


def _namespace_glob(value: str) -> str:
    if not _NAMESPACE_GLOB.match(value):
        raise ValueError(
            f"bad namespace glob {value!r}: a namespace name (a-z, 0-9, '-') with * or ?"
        )
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, label in value.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"bad label key {key!r}: [prefix/]name as Kubernetes spells them")
        if not _LABEL_VALUE.match(label):
            raise ValueError(
                f"bad label value {label!r} of {key!r}: at most 63 of A-Z a-z 0-9 . _ -"
            )
    return value


class NamespacesSpec(_Spec):
    """Where in Kubernetes the policy applies: namespaces whose name matches one of ``names``
    (when given) and whose labels include every ``matchLabels`` pair (when given)."""

    names: list[Annotated[str, AfterValidator(_namespace_glob)]] | None = Field(
        default=None, min_length=1
    )
    match_labels: Annotated[dict[str, str], AfterValidator(_labels)] | None = Field(
        default=None, min_length=1
    )

    @model_validator(mode="after")
    def _something(self) -> NamespacesSpec:
        if self.names is None and self.match_labels is None:
            raise ValueError("give names, matchLabels or both")
        return self


class PolicySpec(_Spec):
    name: Name
    description: str | None = None
    mode: Literal["enforce", "warn"] = "enforce"
    images: list[Glob] = Field(min_length=1)
    namespaces: NamespacesSpec | None = None  # None: every namespace, and outside Kubernetes
    authorities: list[AuthoritySpec] = Field(default_factory=list)
    # None: 1 when there are authorities, else 0 (resolved by cross_checks' caller).
    threshold: int | None = Field(default=None, ge=0)
    attestations: list[AttestationSpec] = Field(default_factory=list)
    require_sbom: bool = False

    @property
    def effective_threshold(self) -> int:
        if self.threshold is not None:
            return self.threshold
        return 1 if self.authorities else 0


class PolicySetSpec(_Spec):
    no_match: Literal["allow", "deny"] = "deny"
    policies: list[PolicySpec] = Field(min_length=1)


def _authority_identity(spec: AuthoritySpec) -> str:
    return spec.model_dump_json(exclude={"name"}, by_alias=True, exclude_none=True)


def cross_checks(
    spec: PolicySetSpec, prefixes: list[YamlPath], pki_roots: Collection[str] | None
) -> list[tuple[YamlPath, str]]:
    """Whole-policy checks; ``prefixes[i]`` is where policy ``i`` sits in the document."""
    problems: list[tuple[YamlPath, str]] = []
    seen_policies: dict[str, int] = {}
    for index, policy in enumerate(spec.policies):
        at = prefixes[index]
        if policy.name in seen_policies:
            problems.append(
                (
                    (*at, "name"),
                    f"policy name {policy.name!r} is already used by policy "
                    f"{seen_policies[policy.name]}",
                )
            )
        seen_policies.setdefault(policy.name, index)
        problems.extend(_policy_checks(policy, at, pki_roots))
    return problems


def _policy_checks(
    policy: PolicySpec, at: YamlPath, pki_roots: Collection[str] | None
) -> list[tuple[YamlPath, str]]:
    problems: list[tuple[YamlPath, str]] = []
    names: dict[str, int] = {}
    identities: dict[str, int] = {}
    for i, authority in enumerate(policy.authorities):
        where = (*at, "authorities", i)
        if authority.name in names:
            problems.append(
                (
                    (*where, "name"),
                    f"authority name {authority.name!r} is already used by "
                    f"authorities[{names[authority.name]}]",
                )
            )
        names.setdefault(authority.name, i)
        # The same signer listed twice would let one party meet a threshold of two with two
        # signatures of its own; a threshold counts independent parties.
        identity = _authority_identity(authority)
        if identity in identities:
            problems.append(
                (where, f"authority {authority.name!r} repeats authorities[{identities[identity]}]")
            )
        identities.setdefault(identity, i)
        pki = authority.pki
        if pki is not None and pki_roots is not None and pki.root not in pki_roots:
            known = ", ".join(sorted(pki_roots)) or "none configured"
            problems.append(
                ((*where, "pki", "root"), f"unknown PKI root {pki.root!r} (known: {known})")
            )
    if policy.threshold is not None and policy.threshold > len(policy.authorities):
        problems.append(
            (
                (*at, "threshold"),
                f"threshold {policy.threshold} is larger than the number of "
                f"authorities ({len(policy.authorities)})",
            )
        )
    attestation_names: dict[str, int] = {}
    for k, attestation in enumerate(policy.attestations):
        where = (*at, "attestations", k)
        if attestation.name in attestation_names:
            problems.append(
                (
                    (*where, "name"),
                    f"attestation name {attestation.name!r} is already used "
                    f"by attestations[{attestation_names[attestation.name]}]",
                )
            )
        attestation_names.setdefault(attestation.name, k)
        if attestation.authorities is None:
            if not policy.authorities:
                problems.append(
                    (where, "the policy has no authorities to verify this attestation with")
                )
            continue
        if not attestation.authorities:
            problems.append(((*where, "authorities"), "name at least one authority"))
        for m, name in enumerate(attestation.authorities):
            if name not in names:
                known = ", ".join(names) or "none defined"
                problems.append(
                    ((*where, "authorities", m), f"unknown authority {name!r} (known: {known})")
                )
    return problems
