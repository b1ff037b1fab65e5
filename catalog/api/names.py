"""Resource names of the catalog API (AIP-122), built and parsed in one place.

    registries/{registry}
    registries/{registry}/repositories/{repository}        {repository}: path, '/' as '%2F'
    registries/{registry}/repositories/{repository}/tags/{tag}
    artifacts/{digest}
    policies/{policy}
    rules/{rule}
    rules/{rule}/runs/{run}        {run}: a run number; rules/-/runs/{run} when the rule is unknown
    auditEvents/{event}            {event}: an event number

Parsers raise ``catalog.errors.InvalidArgument`` (→ INVALID_ARGUMENT) naming the expected form;
repository paths, tags and digests are checked with the OCI layer's own grammar.
"""

from __future__ import annotations

import re

from catalog.errors import InvalidArgument
from catalog.oci.digest import Digest
from catalog.oci.errors import InvalidDigest, InvalidReference
from catalog.oci.reference import validate_repository, validate_tag
from catalog.store.names import validate_name

_REGISTRY = "registries/{registry}"
_REPOSITORY = "registries/{registry}/repositories/{repository}"
_TAG = "registries/{registry}/repositories/{repository}/tags/{tag}"
_ARTIFACT = "artifacts/{digest}"
_POLICY = "policies/{policy}"
_RULE = "rules/{rule}"
_RUNS = "rules/{rule} or rules/-"
_RUN = "rules/{rule}/runs/{run} or rules/-/runs/{run}"
ANY_RULE = "-"  # the wildcard rule of run names (AIP-159): run numbers are unique on their own
_RUN_NUMBER = re.compile(r"[1-9][0-9]{0,17}")  # fits a signed 64-bit id


def validate_registry_id(registry_id: str) -> str:
    """A registry id is a registry's name in the store: one grammar, checked in one place."""
    return validate_name(registry_id)


def validate_rule_id(rule_id: str) -> str:
    """The id of a new rule, the last segment of its name."""
    return validate_name(rule_id, "rule name")


def escape_repository(path: str) -> str:
    """The ``{repository}`` segment of a repository path: ``shop/api`` → ``shop%2Fapi``."""
    return path.replace("/", "%2F")


def unescape_repository(segment: str) -> str:
    """The repository path of a ``{repository}`` segment; ``%2F`` and ``%2f`` are accepted."""
    path = re.sub("%2[Ff]", "/", segment)
    if "%" in path:
        raise InvalidArgument(f"invalid repository segment {segment!r}: only '/' is escaped (%2F)")
    return path


def registry_name(registry_id: str) -> str:
    return f"registries/{validate_registry_id(registry_id)}"


def repository_name(registry_id: str, path: str) -> str:
    return f"{registry_name(registry_id)}/repositories/{escape_repository(path)}"


def tag_name(registry_id: str, path: str, tag: str) -> str:
    return f"{repository_name(registry_id, path)}/tags/{tag}"


def artifact_name(digest: str) -> str:
    return f"artifacts/{digest}"


def policy_name(policy: str) -> str:
    return f"policies/{validate_name(policy, 'policy name')}"


def rule_name(rule: str) -> str:
    return f"rules/{validate_name(rule, 'rule name')}"


def run_name(rule: str | None, run: int) -> str:
    """``rules/{rule}/runs/{run}``; ``rules/-/runs/{run}`` when the rule is not known."""
    return f"{rule_name(rule) if rule else 'rules/' + ANY_RULE}/runs/{run}"


def audit_event_name(event: int) -> str:
    return f"auditEvents/{event}"


def _split(name: str, expected: str, collections: tuple[str, ...]) -> list[str]:
    parts = name.split("/")
    if len(parts) != 2 * len(collections) or parts[0::2] != list(collections) or "" in parts:
        raise InvalidArgument(f"invalid resource name {name!r}: expected {expected}")
    return parts[1::2]


def parse_registry_name(name: str) -> str:
    """``registries/{registry}`` → the registry id."""
    (registry_id,) = _split(name, _REGISTRY, ("registries",))
    return validate_registry_id(registry_id)


def parse_repository_name(name: str) -> tuple[str, str]:
    """``registries/{registry}/repositories/{repository}`` → (registry id, repository path)."""
    registry_id, segment = _split(name, _REPOSITORY, ("registries", "repositories"))
    return validate_registry_id(registry_id), _repository(name, segment)


def parse_tag_name(name: str) -> tuple[str, str, str]:
    """``…/repositories/{repository}/tags/{tag}`` → (registry id, repository path, tag)."""
    registry_id, segment, tag = _split(name, _TAG, ("registries", "repositories", "tags"))
    try:
        validate_tag(tag)
    except InvalidReference as exc:
        raise InvalidArgument(f"invalid resource name {name!r}: {exc}") from exc
    return validate_registry_id(registry_id), _repository(name, segment), tag


def parse_artifact_name(name: str) -> str:
    """``artifacts/{digest}`` → the digest, validated."""
    (digest,) = _split(name, _ARTIFACT, ("artifacts",))
    try:
        return str(Digest.parse(digest))
    except InvalidDigest as exc:
        raise InvalidArgument(f"invalid resource name {name!r}: {exc}") from exc


def parse_policy_name(name: str) -> str:
    """``policies/{policy}`` → the policy set's id."""
    (policy,) = _split(name, _POLICY, ("policies",))
    return _id(name, policy, "policy name")


def parse_rule_name(name: str) -> str:
    """``rules/{rule}`` → the rule's id."""
    (rule,) = _split(name, _RULE, ("rules",))
    return _id(name, rule, "rule name")


def parse_runs_parent(name: str) -> str | None:
    """``rules/{rule}`` → the rule's id; ``rules/-`` → None (every rule)."""
    (rule,) = _split(name, _RUNS, ("rules",))
    return None if rule == ANY_RULE else _id(name, rule, "rule name")


def parse_run_name(name: str) -> tuple[str | None, int]:
    """``rules/{rule}/runs/{run}`` → (rule id, or None for ``-``; run number)."""
    rule, run = _split(name, _RUN, ("rules", "runs"))
    if not _RUN_NUMBER.fullmatch(run):
        raise InvalidArgument(f"invalid resource name {name!r}: the run must be a run number")
    return (None if rule == ANY_RULE else _id(name, rule, "rule name")), int(run)


def _id(name: str, value: str, what: str) -> str:
    try:
        return validate_name(value, what)
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid resource name {name!r}: {exc}") from exc


def _repository(name: str, segment: str) -> str:
    try:
        return validate_repository(unescape_repository(segment))
    except InvalidReference as exc:
        raise InvalidArgument(f"invalid resource name {name!r}: {exc}") from exc
