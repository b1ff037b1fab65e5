"""Deploy-gate policies: load a YAML policy (set), refuse it with line numbers, evaluate it.

The format is described in ``docs/policy.md``. In short::

    policy_set = load_policy_set(text, source="policy.yaml", pki_roots={"corp"})
    decision = evaluate(policy_set, facts, policy_version=3)
    policy_set.digest  # "sha256:…" of the canonical form: same meaning → same digest

A file is either a policy set (``noMatch`` and ``policies``) or a single policy, which loads
as a set of one with ``noMatch: deny``.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from catalog.trust.policy.compiled import (
    Policy,
    PolicySet,
    canonical_json,
    compile_canonical,
)
from catalog.trust.policy.errors import PolicyError, Problem, YamlPath
from catalog.trust.policy.evaluation import WARNING, evaluate
from catalog.trust.policy.located_yaml import LocatedDocument, load_located
from catalog.trust.policy.model import PolicySetSpec, PolicySpec, cross_checks
from catalog.trust.policy.source import read_source

__all__ = [
    "WARNING",
    "Policy",
    "PolicyError",
    "PolicySet",
    "Problem",
    "canonical_policy",
    "evaluate",
    "load_policy_file",
    "load_policy_set",
    "policy_digest",
]


def load_policy_set(
    text: str, *, source: str = "<policy>", pki_roots: Collection[str] | None = None
) -> PolicySet:
    """Parse, validate and compile a policy set (or a single policy) from YAML text.

    ``pki_roots`` names the configured PKI roots; a ``pki`` authority naming another is
    refused. ``None`` skips that check (when the roots are not known where the policy is read).
    Raises :class:`PolicyError` listing every problem as ``source:line: path: reason``.
    """
    document = load_located(text, source)
    data = document.data
    if not isinstance(data, dict):
        raise PolicyError([document.problem((), "expected a mapping (a policy or a policy set)")])
    # A single policy is validated at the top level, so its paths read "authorities[0]…".
    model: type[BaseModel] = PolicySetSpec if "policies" in data else PolicySpec
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_problems(document, exc, model)) from None
    prefixes: list[YamlPath]
    if isinstance(validated, PolicySpec):
        spec, prefixes = PolicySetSpec(policies=[validated]), [()]
    else:
        spec = typing.cast(PolicySetSpec, validated)
        prefixes = [("policies", i) for i in range(len(spec.policies))]
    problems = cross_checks(spec, prefixes, pki_roots)
    if problems:
        raise PolicyError(document.problem(path, message) for path, message in problems)
    return compile_canonical(canonical_set(spec), source)


def canonical_set(spec: PolicySetSpec) -> str:
    """The validated set's canonical JSON: what it compiles from, and what the store keeps."""
    return canonical_json(
        {"noMatch": spec.no_match, "policies": [_canonical_policy(p) for p in spec.policies]}
    )


def _canonical_policy(spec: PolicySpec) -> dict[str, Any]:
    data: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["threshold"] = spec.effective_threshold  # omitted and explicit default: one digest
    return data


def load_policy_file(path: Path, *, pki_roots: Collection[str] | None = None) -> PolicySet:
    return load_policy_set(read_source(path), source=str(path), pki_roots=pki_roots)


def canonical_policy(policy: PolicySet | Policy) -> str:
    """Canonical JSON (sorted keys, defaults filled in); it loads back as the same policy."""
    return policy.canonical


def policy_digest(policy: PolicySet | Policy) -> str:
    """``sha256:<hex>`` of the canonical form: formatting, comments and key order don't count."""
    return policy.digest


# --- pydantic errors → lines --------------------------------------------------------------


def _problems(
    document: LocatedDocument, exc: ValidationError, model: type[BaseModel]
) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path: YamlPath = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            message = _unknown_key(path, model)
        elif kind == "missing":
            message = "required"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(document.problem(path, message))
    return problems


def _unknown_key(path: YamlPath, model: type[BaseModel]) -> str:
    key = str(path[-1])
    known = _known_keys(path[:-1], model)
    if model is PolicySpec and not path[:-1]:
        known += ["policies", "noMatch"]  # a set file whose ``policies`` key is misspelt
    hint = difflib.get_close_matches(key, known, n=1)
    suggestion = f" (did you mean {hint[0]}?)" if hint else ""
    return f"unknown key {key!r}{suggestion}; expected one of: {', '.join(sorted(known))}"


def _known_keys(path: YamlPath, model: type[BaseModel]) -> list[str]:
    """The YAML keys allowed at ``path``, following the schema's fields down from ``model``."""
    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return []
        if isinstance(part, int):
            continue  # list items: the list's item model is already ``current``
        fields = {f.alias or name: f for name, f in current.model_fields.items()}
        info = fields.get(part)
        current = _model_in(info.annotation) if info is not None else None
    if current is None:
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
