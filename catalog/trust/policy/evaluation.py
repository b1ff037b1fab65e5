"""Judging one image against a policy set: pure, allocation-light, and explicit about denials.

Every gate request runs this, so the passing path only compares strings and runs the patterns
compiled at load time; the wording of denials (what was required, what was found) is built
only when something fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from catalog.trust.policy.compiled import (
    AttestationRule,
    Authority,
    Policy,
    PolicySet,
    too_long,
)
from catalog.trust.policy.facts import (
    AttestationFacts,
    Decision,
    Evidence,
    ImageFacts,
    Namespace,
)
from catalog.trust.policy.image_globs import reference_candidates
from catalog.trust.signatures import VerifiedSignature

_SHOWN = 100  # characters of an over-long identity or issuer kept in a reason

WARNING = "warning: "


@dataclass(slots=True)
class _Outcome:
    reasons: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


def evaluate(
    policy_set: PolicySet,
    facts: ImageFacts,
    *,
    policy_version: int | None = None,
    namespace: Namespace | None = None,
) -> Decision:
    """May the image described by ``facts`` run? Every policy whose images match (and, in
    Kubernetes, that selects ``namespace``) must allow it.

    ``reasons`` holds denials (which make ``allowed`` false) followed by warnings, which start
    with ``"warning: "`` and never block: the denials of warn-mode policies, and the note that
    no policy applied when the set's ``noMatch`` is ``allow``.
    """
    candidates = reference_candidates(facts.reference, facts.digest)
    matched = policy_set.applicable(candidates, namespace)
    if not matched:
        return _no_match(policy_set, facts, policy_version)
    usable = tuple(s for s in facts.signatures if _usable(s, facts.digest))
    several = len(matched) > 1
    denials: list[str] = []
    warnings: list[str] = []
    evidence: list[Evidence] = []
    for policy in matched:
        prefix = f"{policy.name}: " if several else ""
        outcome = _judge(policy, facts, usable, prefix)
        evidence.extend(outcome.evidence)
        if policy.mode == "enforce":
            denials.extend(prefix + reason for reason in outcome.reasons)
        else:
            warnings.extend(WARNING + prefix + reason for reason in outcome.reasons)
    return Decision(
        allowed=not denials,
        digest=facts.digest,
        policy=", ".join(p.name for p in matched),
        policy_version=policy_version,
        mode="enforce" if any(p.mode == "enforce" for p in matched) else "warn",
        reasons=(*denials, *warnings),
        evidence=tuple(evidence),
    )


def _no_match(policy_set: PolicySet, facts: ImageFacts, version: int | None) -> Decision:
    subject = facts.reference or facts.digest
    if policy_set.no_match == "allow":
        reason = f"{WARNING}no policy applies to {subject} (noMatch: allow)"
    else:
        reason = f"no policy applies to {subject} (noMatch: deny)"
    return Decision(
        allowed=policy_set.no_match == "allow",
        digest=facts.digest,
        policy=None,
        policy_version=version,
        mode=None,
        reasons=(reason,),
    )


def _usable(sig: VerifiedSignature, digest: str) -> bool:
    # The verifier only marks a signature verified when its payload names the digest; checking
    # again costs a tuple lookup and stops a gate that mixes up facts from granting anything.
    return sig.verified and (not sig.signed_digests or digest in sig.signed_digests)


def _judge(
    policy: Policy, facts: ImageFacts, usable: tuple[VerifiedSignature, ...], prefix: str
) -> _Outcome:
    outcome = _Outcome()
    if policy.threshold:
        _check_signatures(policy, facts, usable, prefix, outcome)
    for rule in policy.attestations:
        _check_attestation(rule, facts, prefix, outcome)
    if policy.require_sbom and facts.sbom_count == 0:
        outcome.reasons.append("no SBOM attached")
    return outcome


def _evidence(rule: str, sig: VerifiedSignature) -> Evidence:
    return Evidence(
        rule=rule,
        attachment_digest=sig.attachment_digest,
        method=sig.method,
        identity=sig.identity,
        issuer=sig.issuer,
        key_fingerprint=sig.key_fingerprint,
        log_index=sig.log_index,
        integrated_time=sig.integrated_time,
    )


# --- signatures and the threshold ---------------------------------------------------------


def _check_signatures(
    policy: Policy,
    facts: ImageFacts,
    usable: tuple[VerifiedSignature, ...],
    prefix: str,
    outcome: _Outcome,
) -> None:
    authorities = policy.authorities
    options = [[j for j, sig in enumerate(usable) if a.accepts(sig)] for a in authorities]
    chosen = _assign(options)
    for i, authority in enumerate(authorities):
        if i in chosen:
            outcome.evidence.append(
                _evidence(f"{prefix}authority {authority.name}", usable[chosen[i]])
            )
    if len(chosen) >= policy.threshold:
        return
    outcome.reasons.append(_threshold_reason(policy, facts, usable, options, chosen))


def _assign(options: list[list[int]]) -> dict[int, int]:
    """Authorities → distinct signatures, as many as possible (bipartite matching).

    One signature counts for one authority only: otherwise two overlapping authorities would
    let a single signer meet a threshold of two.
    """
    owner: dict[int, int] = {}  # signature index → authority index

    def claim(authority: int, seen: set[int]) -> bool:
        for sig in options[authority]:
            if sig in seen:
                continue
            seen.add(sig)
            if sig not in owner or claim(owner[sig], seen):
                owner[sig] = authority
                return True
        return False

    for authority, choices in enumerate(options):
        if choices:
            claim(authority, set())
    return {authority: sig for sig, authority in owner.items()}


def _threshold_reason(
    policy: Policy,
    facts: ImageFacts,
    usable: tuple[VerifiedSignature, ...],
    options: list[list[int]],
    chosen: dict[int, int],
) -> str:
    authorities = policy.authorities
    missing: list[str] = []
    for i, authority in enumerate(authorities):
        if i in chosen:
            continue
        if options[i]:
            missing.append(f"{authority.name} (its signatures already count for another)")
        else:
            missing.append(authority.name)
    unsatisfied = [a for i, a in enumerate(authorities) if i not in chosen]
    detail = (
        f"no verified signature from authority {' or '.join(missing)} "
        f"(found: {_found_signatures(facts, usable, unsatisfied)})"
    )
    if policy.threshold == 1:
        return detail
    satisfied = [a.name for i, a in enumerate(authorities) if i in chosen]
    got = f"{len(chosen)} satisfied" + (f" ({', '.join(satisfied)})" if satisfied else "")
    names = ", ".join(a.name for a in authorities)
    required = f"verified signatures from {policy.threshold} of authorities {names} required"
    return f"{required}, {got}: {detail}"


def _describe(sig: VerifiedSignature) -> str:
    if sig.method == "key":
        return f"by key {sig.key_fingerprint}"
    if sig.method == "pki":
        return f"by {_short(sig.identity) or 'a certificate'} under {sig.trust_root}"
    if sig.method == "keyless":
        return f"by {_short(sig.identity)}, issuer {_short(sig.issuer)}"
    return "by an unknown signer"


def _short(value: str | None) -> str | None:
    """A signer's value as a reason shows it: one over the matching cap is cut, so a decision
    (stored, listed, logged) does not carry a 10 KB identity."""
    if value is None or not too_long(value):
        return value
    return f"{value[:_SHOWN]}… ({len(value)} characters)"


def _hidden_mismatches(sig: VerifiedSignature, authorities: Sequence[Authority]) -> str:
    notes = []
    for authority in authorities:
        shown, why = authority.mismatch(sig)
        if not shown:
            notes.append(f"for {authority.name}: {why}")
    return f" [{'; '.join(notes)}]" if notes else ""


def _found_signatures(
    facts: ImageFacts, usable: tuple[VerifiedSignature, ...], unsatisfied: Sequence[Authority]
) -> str:
    parts: list[str] = []
    described = [_describe(s) + _hidden_mismatches(s, unsatisfied) for s in usable]
    if len(described) == 1:
        parts.append(f"1 signature {described[0]}")
    elif described:
        parts.append(f"{len(described)} signatures: " + "; ".join(described))
    elif facts.signatures:
        parts.append("no verified signatures")
    else:
        parts.append("no signatures")
    parts.extend(_ignored(facts.signatures, facts.digest))
    return "; ".join(parts)


def _ignored(signatures: Sequence[VerifiedSignature], digest: str) -> list[str]:
    parts = []
    unverified = [s for s in signatures if not s.verified]
    if unverified:
        shown = "; ".join(s.reason for s in unverified[:2])
        more = f"; and {len(unverified) - 2} more" if len(unverified) > 2 else ""
        parts.append(f"{len(unverified)} unverified, ignored: {shown}{more}")
    elsewhere = sum(1 for s in signatures if s.verified and not _usable(s, digest))
    if elsewhere:
        parts.append(f"{elsewhere} signed for another digest, ignored")
    return parts


# --- attestations -------------------------------------------------------------------------


def _check_attestation(
    rule: AttestationRule, facts: ImageFacts, prefix: str, outcome: _Outcome
) -> None:
    typed = [a for a in facts.attestations if a.predicate_type == rule.predicate_type]
    verified = [a for a in typed if _usable(a.signature, facts.digest)]
    signed = [a for a in verified if any(x.accepts(a.signature) for x in rule.authorities)]
    failures: list[str] = []
    for attestation in signed:
        failure = _condition_failure(rule, attestation)
        if failure is None:
            outcome.evidence.append(
                _evidence(f"{prefix}attestation {rule.name}", attestation.signature)
            )
            return
        if failure not in failures:
            failures.append(failure)
    head = f"attestation {rule.name}: "
    if failures:
        outcome.reasons.append(head + "; ".join(failures))
    elif verified:
        names = " or ".join(a.name for a in rule.authorities)
        found = "; ".join(
            _describe(a.signature) + _hidden_mismatches(a.signature, rule.authorities)
            for a in verified
        )
        outcome.reasons.append(f"{head}not signed by authority {names} (found: signed {found})")
    else:
        found = _found_attestations(facts, typed)
        outcome.reasons.append(
            f"{head}no verified attestation of type {rule.predicate_type} (found: {found})"
        )


def _condition_failure(rule: AttestationRule, attestation: AttestationFacts) -> str | None:
    if not rule.conditions:
        return None
    provenance = attestation.provenance
    if provenance is None:
        return "no SLSA provenance could be read from it"
    for condition in rule.conditions:
        value = condition.get(provenance)
        if not condition.rule.matches(value):
            return condition.rule.mismatch(value)
    return None


def _found_attestations(facts: ImageFacts, typed: list[AttestationFacts]) -> str:
    parts = []
    others = sorted(
        {a.predicate_type for a in facts.attestations} - {a.predicate_type for a in typed}
    )
    if others:
        parts.append(f"{len(facts.attestations) - len(typed)} of other types: {', '.join(others)}")
    if typed:
        parts.extend(_ignored([a.signature for a in typed], facts.digest))
    return "; ".join(parts) or "no attestations"
