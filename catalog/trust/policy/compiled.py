"""Policies ready to evaluate: regexes and globs compiled once, names resolved, digests computed.

They are compiled from a set's canonical JSON (what loading makes of the validated schema,
``model``; what the store keeps beside the source), so that a gate request only compares
strings and runs pre-compiled patterns, and a stored set is compiled again without pydantic or
YAML.

The records are NamedTuples, immutable like frozen dataclasses but made without generated
source: a one-shot ``xregistry verify`` pays for every class it imports (~0.5 ms a frozen
dataclass, ~0.06 ms a NamedTuple).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, Literal, NamedTuple

from catalog.regex import LinearRegex, compile_linear
from catalog.trust.policy.facts import Namespace, ProvenanceFacts
from catalog.trust.policy.image_globs import directories, glob_regex, literal_directory
from catalog.trust.signatures import Method, VerifiedSignature

# Provenance conditions: (policy key, ProvenanceFacts attribute); each may be given as the key
# (exact) or the key plus ``RegExp``.
CONDITION_FIELDS: tuple[tuple[str, str], ...] = (
    ("builderId", "builder_id"),
    ("buildType", "build_type"),
    ("sourceRepository", "source_uri"),
    ("sourceRef", "source_ref"),
    ("entryPoint", "entry_point"),
)
# A policy's canonical JSON, decoded: keys as the policy file spells them, defaults filled in.
Canonical = Mapping[str, Any]

# Identities, issuers and provenance values longer than this match no rule: far above any real
# one (a GitHub workflow identity is ~150 characters), and it bounds the work per signature.
MAX_MATCHED_LENGTH = 4096


def too_long(value: str | None) -> bool:
    return value is not None and len(value) > MAX_MATCHED_LENGTH


class TextRule(NamedTuple):
    """One value that must equal ``exact``, or fully match ``pattern``."""

    field: str  # as the policy spells it: "subject", "builderId"
    exact: str | None
    pattern: LinearRegex | None

    def matches(self, value: str | None) -> bool:
        if value is None or too_long(value):
            return False
        if self.exact is not None:
            return value == self.exact
        # fullmatch: an unanchored pattern would let "acme" admit "evil-acme-fork".
        return self.pattern is not None and self.pattern.fullmatches(value)

    def mismatch(self, value: str | None) -> str:
        if value is None:
            return f"{self.field} is missing"
        if too_long(value):
            return (
                f"{self.field} is {len(value)} characters long "
                f"(at most {MAX_MATCHED_LENGTH} are matched)"
            )
        if self.exact is not None:
            return f"{self.field} {value} does not match {self.exact}"
        pattern = self.pattern.pattern if self.pattern is not None else ""
        return f"{self.field} {value} does not match the regular expression {pattern}"


def _text_rule(field: str, exact: str | None, regex: str | None) -> TextRule | None:
    if exact is None and regex is None:
        return None
    pattern = compile_linear(regex) if regex is not None else None
    return TextRule(field, exact, pattern)


class Authority(NamedTuple):
    """Who may sign: a keyless identity, a public key, or a configured PKI root."""

    name: str
    method: Method
    require_tlog: bool
    issuer: TextRule | None = None  # keyless
    subject: TextRule | None = None  # keyless
    extensions: tuple[tuple[str, str], ...] = ()  # keyless
    fingerprint: str | None = None  # key
    pem: str | None = None  # key, when given inline: the gate verifies with it
    trust_root: str | None = None  # pki: "pki:<root>", as the verifier names it

    def accepts(self, sig: VerifiedSignature) -> bool:
        """Whether a signature (already known to be verified) is this authority's."""
        if sig.method != self.method or (self.require_tlog and sig.log_index is None):
            return False
        if self.method == "key":
            return sig.key_fingerprint == self.fingerprint
        if self.method == "pki":
            return sig.trust_root == self.trust_root
        if self.issuer is None or self.subject is None:
            return False  # unreachable for a loaded policy; keeps the check total
        if not (self.issuer.matches(sig.issuer) and self.subject.matches(sig.identity)):
            return False
        extensions = sig.extensions
        return all(extensions.get(name) == value for name, value in self.extensions)

    def mismatch(self, sig: VerifiedSignature) -> tuple[bool, str]:
        """Why ``sig`` is not this authority's; True when the reason shows in its summary.

        A summary names identity, issuer, key and root; an extension or a missing log entry
        does not, so those are spelled out in denials or the user would see a "matching" signer.
        """
        if sig.method != self.method:
            return True, f"signed with method {sig.method}, not {self.method}"
        if self.method == "keyless" and self.issuer is not None and self.subject is not None:
            # A value over the cap is shortened in the summary: the reason spells out why.
            if not self.issuer.matches(sig.issuer):
                return not too_long(sig.issuer), self.issuer.mismatch(sig.issuer)
            if not self.subject.matches(sig.identity):
                return not too_long(sig.identity), self.subject.mismatch(sig.identity)
            for name, value in self.extensions:
                actual = sig.extensions.get(name)
                if actual != value:
                    shown = "missing" if actual is None else actual
                    return False, f"extension {name} is {shown}, not {value}"
        elif self.method == "key" and sig.key_fingerprint != self.fingerprint:
            return True, f"key {sig.key_fingerprint} is not {self.fingerprint}"
        elif self.method == "pki" and sig.trust_root != self.trust_root:
            return True, f"root {sig.trust_root} is not {self.trust_root}"
        if self.require_tlog and sig.log_index is None:
            return False, "no transparency-log entry (requireTlog)"
        return True, ""  # it is this authority's (another authority already counted it)


class ProvenanceRule(NamedTuple):
    rule: TextRule
    get: Callable[[ProvenanceFacts], str | None]


class AttestationRule(NamedTuple):
    name: str
    predicate_type: str
    authorities: tuple[Authority, ...]
    conditions: tuple[ProvenanceRule, ...]


class NamespaceSelector(NamedTuple):
    names: LinearRegex | None  # every name glob in one pattern
    labels: tuple[tuple[str, str], ...]

    def selects(self, namespace: Namespace) -> bool:
        if self.names is not None and not self.names.fullmatches(namespace.name):
            return False
        known = namespace.labels
        return known is None or all(known.get(key) == value for key, value in self.labels)


def _namespace_selector(spec: Canonical | None) -> NamespaceSelector | None:
    if spec is None:
        return None
    names = None
    globs = spec.get("names")
    if globs is not None:
        # Names are [a-z0-9-]: a glob's * and ? are the only non-literal characters.
        parts = [glob.replace("*", "[a-z0-9-]*").replace("?", "[a-z0-9-]") for glob in globs]
        names = compile_linear("|".join(f"(?:{part})" for part in parts))
    return NamespaceSelector(names, tuple(sorted(_data(spec.get("matchLabels") or {}).items())))


class Policy(NamedTuple):
    name: str
    description: str | None
    mode: Literal["enforce", "warn"]
    globs: tuple[str, ...]  # normalised
    images: LinearRegex  # all globs in one pattern
    namespaces: NamespaceSelector | None  # None: everywhere
    authorities: tuple[Authority, ...]
    threshold: int
    attestations: tuple[AttestationRule, ...]
    require_sbom: bool
    canonical: str  # canonical JSON of this policy
    digest: str  # "sha256:<hex>" of ``canonical``

    def applies_to(self, candidates: tuple[str, ...]) -> bool:
        fullmatches = self.images.fullmatches
        return any(fullmatches(candidate) for candidate in candidates)

    def selects(self, namespace: Namespace | None) -> bool:
        """Whether the policy applies in ``namespace`` (None: outside Kubernetes, everywhere)."""
        return namespace is None or self.namespaces is None or self.namespaces.selects(namespace)


class PolicySet(NamedTuple):
    policies: tuple[Policy, ...]
    no_match: Literal["allow", "deny"]
    canonical: str  # canonical JSON of the whole set: same meaning → same text
    digest: str  # "sha256:<hex>" of ``canonical``; what the store versions by
    source: str  # where it was loaded from (for messages only; not part of the digest)
    # Literal glob directory → indexes of the policies with such a glob: with hundreds of
    # policies, a reference is tried only against those that can possibly match it.
    by_directory: Mapping[str, tuple[int, ...]]

    def applicable(
        self, candidates: tuple[str, ...], namespace: Namespace | None = None
    ) -> list[Policy]:
        """The policies whose images match (and that select ``namespace``), in the set's order."""
        index = self.by_directory
        maybe: set[int] = set()
        for directory in directories(candidates):
            maybe.update(index.get(directory, ()))
        policies = self.policies
        return [
            policies[i]
            for i in sorted(maybe)
            if policies[i].applies_to(candidates) and policies[i].selects(namespace)
        ]

    def selection(self, namespace: Namespace | None) -> tuple[bool, ...]:
        """Which policies ``namespace`` selects: decisions in namespaces with the same selection
        are the same (an empty tuple when no policy selects namespaces)."""
        if namespace is None or all(p.namespaces is None for p in self.policies):
            return ()
        return tuple(p.selects(namespace) for p in self.policies)

    def needs_evidence(self, candidates: tuple[str, ...], namespace: Namespace | None) -> bool:
        """Whether judging a reference offering ``candidates`` (without its digest) could need
        signatures, attestations or SBOMs: False when every policy that applies asks for none
        and no glob names a digest (which could bring in another policy)."""
        if any("@" in glob for policy in self.policies for glob in policy.globs):
            return True
        return any(
            policy.threshold or policy.attestations or policy.require_sbom
            for policy in self.applicable(candidates, namespace)
        )


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def text_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class _Object(dict[str, Any]):
    """An object of a stored canonical form that remembers which keys the compiler read."""

    __slots__ = ("read",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def _data(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """``mapping`` read whole: its keys are the policy's data (labels, extensions), not fields."""
    if isinstance(mapping, _Object):
        mapping.read.update(mapping)
    return mapping


def compile_canonical(canonical: str, source: str, *, stored: bool = False) -> PolicySet:
    """The set whose canonical JSON is ``canonical`` (as :func:`canonical_json` wrote it for a
    validated set: nothing here checks it again). ``source`` names it in messages. A
    ``stored`` form may come from another version of xregistry, and the form has no version:
    one holding a key this compiler did not read raises ValueError (a field it does not know
    could restrict what the set admits; judging without it would fail open)."""
    objects: list[_Object] = []

    def tracked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        made = _Object(pairs)
        objects.append(made)
        return made

    data = json.loads(canonical, object_pairs_hook=tracked if stored else None)
    policies = tuple(compile_policy(p) for p in data["policies"])
    by_directory: dict[str, list[int]] = {}
    for index, policy in enumerate(policies):
        for directory in {literal_directory(glob) for glob in policy.globs}:
            by_directory.setdefault(directory, []).append(index)
    compiled = PolicySet(
        policies,
        data["noMatch"],
        canonical,
        text_digest(canonical),
        source,
        {directory: tuple(indexes) for directory, indexes in by_directory.items()},
    )
    unknown = sorted({key for made in objects for key in made.keys() - made.read})
    if unknown:
        raise ValueError(f"{source}: fields this version does not know: {', '.join(unknown)}")
    return compiled


def compile_policy(spec: Canonical) -> Policy:
    authorities = tuple(_authority(a) for a in spec["authorities"])
    by_name = {a.name: a for a in authorities}
    canonical = canonical_json(spec)
    return Policy(
        name=spec["name"],
        description=spec.get("description"),
        mode=spec["mode"],
        globs=tuple(spec["images"]),
        images=glob_regex(spec["images"]),
        namespaces=_namespace_selector(spec.get("namespaces")),
        authorities=authorities,
        threshold=spec["threshold"],
        attestations=tuple(_attestation(a, authorities, by_name) for a in spec["attestations"]),
        require_sbom=spec["requireSbom"],
        canonical=canonical,
        digest=text_digest(canonical),
    )


def _authority(spec: Canonical) -> Authority:
    name, require_tlog = spec["name"], spec["requireTlog"]
    key = spec.get("key")
    if key is not None:
        pem = key.get("pem")
        fingerprint = key["fingerprint"] if pem is None else pem_fingerprint(pem)
        return Authority(name, "key", require_tlog, fingerprint=fingerprint, pem=pem)
    pki = spec.get("pki")
    if pki is not None:
        return Authority(name, "pki", require_tlog, trust_root=f"pki:{pki['root']}")
    keyless = spec.get("keyless")
    if keyless is None:  # the schema guarantees exactly one kind
        raise AssertionError(f"authority {name} has no kind")
    return Authority(
        name,
        "keyless",
        require_tlog,
        issuer=_text_rule("issuer", keyless.get("issuer"), keyless.get("issuerRegExp")),
        subject=_text_rule("subject", keyless.get("subject"), keyless.get("subjectRegExp")),
        extensions=tuple(sorted(_data(keyless["extensions"]).items())),
    )


def pem_der(pem: str) -> bytes:
    """The SubjectPublicKeyInfo DER of a policy's key, from its PEM as validation wrote it
    (RFC 7468: the DER in base64 between the two lines): no cryptography to import."""
    lines = pem.strip().splitlines()
    return base64.b64decode("".join(lines[1:-1]), validate=True)


def pem_fingerprint(pem: str) -> str:
    """sha256 hex of the SPKI DER, the way the verifier reports ``key_fingerprint``."""
    return hashlib.sha256(pem_der(pem)).hexdigest()


def _attestation(
    spec: Canonical, every: tuple[Authority, ...], by_name: dict[str, Authority]
) -> AttestationRule:
    named = spec.get("authorities")
    authorities = every if named is None else tuple(by_name[n] for n in named)
    return AttestationRule(
        spec["name"], spec["predicateType"], authorities, _conditions(spec.get("conditions"))
    )


def _conditions(spec: Canonical | None) -> tuple[ProvenanceRule, ...]:
    if spec is None:
        return ()
    rules: list[ProvenanceRule] = []
    for label, facts_attribute in CONDITION_FIELDS:
        rule = _text_rule(label, spec.get(label), spec.get(label + "RegExp"))
        if rule is not None:
            rules.append(ProvenanceRule(rule, attrgetter(facts_attribute)))
    return tuple(rules)
