"""A stored policy set is compiled from the canonical JSON kept beside its source (no pydantic,
no YAML) into the same set the source loads to; without it, or when it is not the digest's,
from the source as before."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from catalog.errors import InvalidArgument
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.schema import policies
from catalog.trust.policy.compiled import (
    Policy,
    PolicySet,
    canonical_json,
    pem_der,
    pem_fingerprint,
    text_digest,
)
from catalog.trust.policy.loading import load_policy_set
from catalog.trust.policy.stored import Policies, stored_set
from tests.trust.policy.test_facts import COSIGN_PUB, COSIGN_PUB_FP

PEM = "\n".join("            " + line for line in COSIGN_PUB.strip().splitlines())
# Every kind of rule the compiler builds: keyless with patterns and extensions, an inline key,
# a fingerprint, a PKI root, attestations with conditions, namespaces, modes, thresholds.
RICH = f"""
noMatch: allow
policies:
  - name: shop
    description: the shop's images
    images: ["registry.acme.io/shop/**", "registry.acme.io/base@sha256:*"]
    namespaces: {{names: ["prod-*"], matchLabels: {{tier: web}}}}
    authorities:
      - name: ci
        keyless:
          issuer: https://token.actions.githubusercontent.com
          subjectRegExp: https://github\\\\.com/acme/.*
          extensions: {{github_workflow_ref: refs/heads/main}}
        requireTlog: true
      - name: release
        key:
          pem: |
{PEM}
      - name: farm
        key: {{fingerprint: "SHA256:{"AB" * 32}"}}
      - name: corp
        pki: {{root: corp}}
    threshold: 2
    attestations:
      - name: provenance
        predicateType: https://slsa.dev/provenance/v1
        authorities: [ci]
        conditions: {{builderIdRegExp: "https://github\\\\.com/.*", sourceRef: refs/heads/main}}
    requireSbom: true
  - name: tools
    mode: warn
    images: ["registry.acme.io/tools/*"]
"""


def _shape(policy_set: PolicySet) -> object:
    """Everything a set judges with, compiled patterns by their text."""

    def rule(r: object) -> object:
        return None if r is None else (r.field, r.exact, r.pattern and r.pattern.pattern)  # type: ignore[attr-defined]

    def policy(p: Policy) -> object:
        return (
            p.name,
            p.description,
            p.mode,
            p.globs,
            p.images.pattern,
            p.namespaces
            and (p.namespaces.names and p.namespaces.names.pattern, p.namespaces.labels),
            [
                (
                    a.name,
                    a.method,
                    a.require_tlog,
                    rule(a.issuer),
                    rule(a.subject),
                    a.extensions,
                    a.fingerprint,
                    a.pem,
                    a.trust_root,
                )
                for a in p.authorities
            ],
            p.threshold,
            [
                (
                    t.name,
                    t.predicate_type,
                    [a.name for a in t.authorities],
                    [
                        (c.rule.field, c.rule.exact, c.rule.pattern and c.rule.pattern.pattern)
                        for c in t.conditions
                    ],
                )
                for t in p.attestations
            ],
            p.require_sbom,
            p.canonical,
            p.digest,
        )

    return (
        [policy(p) for p in policy_set.policies],
        policy_set.no_match,
        policy_set.canonical,
        policy_set.digest,
        dict(policy_set.by_directory),
    )


def test_a_stored_set_compiles_from_its_canonical_json_to_what_its_source_loads_to() -> None:
    loaded = load_policy_set(RICH, source="policy prod v1")
    stored = stored_set("not: [yaml", loaded.canonical, loaded.digest, "policy prod v1")

    assert _shape(stored) == _shape(loaded)
    assert stored.source == "policy prod v1"


def test_without_canonical_json_or_with_another_digests_the_source_is_parsed() -> None:
    loaded = load_policy_set(RICH, source="x")
    other = load_policy_set("name: other\nimages: ['**']\n", source="x")

    assert _shape(stored_set(RICH, None, loaded.digest, "x")) == _shape(loaded)
    # Canonical JSON that is not the version's (a row changed behind the store's back): the
    # source decides, as it did before the catalog kept canonical JSON.
    assert _shape(stored_set(RICH, other.canonical, loaded.digest, "x")) == _shape(loaded)


def test_canonical_json_this_version_cannot_compile_leaves_it_to_the_source() -> None:
    # The canonical form has no format version: a set stored by another version (a field it
    # did not write, a value of another shape) is the digest's all the same. It must still
    # judge: the source decides, as for a set stored before the catalog kept canonical JSON.
    loaded = load_policy_set(RICH, source="x")
    data = json.loads(loaded.canonical)
    del data["policies"][0]["requireSbom"]
    missing = canonical_json(data)
    data = json.loads(loaded.canonical)
    data["policies"][0]["authorities"] = {"ci": data["policies"][0]["authorities"][0]}
    reshaped = canonical_json(data)
    for canonical in (missing, reshaped, "[]"):
        stored = stored_set(RICH, canonical, text_digest(canonical), "x")
        assert _shape(stored) == _shape(loaded)


def test_a_policy_keys_der_and_fingerprint_come_from_its_validated_pem() -> None:
    (policy,) = load_policy_set(
        "name: k\nimages: ['**']\nauthorities:\n  - name: r\n    key:\n      pem: |\n"
        + "\n".join("        " + line for line in COSIGN_PUB.strip().splitlines())
        + "\n",
    ).policies
    pem = policy.authorities[0].pem
    assert pem is not None
    assert pem_fingerprint(pem) == COSIGN_PUB_FP
    assert pem_der(pem).startswith(b"\x30")  # a DER SEQUENCE: the SubjectPublicKeyInfo


def test_applying_unchanged_content_gives_an_older_version_its_canonical_json(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    store = Policies(session_factory(engine), {"corp"})
    view, created = store.apply("prod", RICH)
    assert created
    with engine.begin() as connection:
        row = connection.execute(select(policies)).one()
        assert row.canonical == load_policy_set(RICH).canonical
        # As a set applied before the catalog kept canonical JSON (migration 0008) is stored.
        connection.execute(update(policies).values(canonical=None))

    again, created = store.apply("prod", RICH)

    assert not created
    assert again.version == view.version == 1
    with engine.connect() as connection:
        assert connection.execute(select(policies.c.canonical)).scalar_one() == row.canonical
    engine.dispose()


def test_a_stored_form_with_a_field_this_version_does_not_know_is_judged_from_its_source() -> None:
    # A newer version may add a field that restricts what a set admits; compiling its stored
    # form without it would admit what the set denies. The source decides instead, which this
    # version refuses whole when it does not know a field: the gate fails closed.
    loaded = load_policy_set(RICH, source="x")
    places: list[Callable[[Any], Any]] = [
        lambda d: d,
        lambda d: d["policies"][0],
        lambda d: d["policies"][0]["namespaces"],
        lambda d: d["policies"][0]["authorities"][0],
        lambda d: d["policies"][0]["authorities"][0]["keyless"],
        lambda d: d["policies"][0]["authorities"][1]["key"],
        lambda d: d["policies"][0]["attestations"][0],
        lambda d: d["policies"][0]["attestations"][0]["conditions"],
    ]
    for place in places:
        data = json.loads(loaded.canonical)
        place(data)["requireReproducible"] = True
        canonical = canonical_json(data)
        unknown = RICH.replace("    requireSbom: true", "    requireSbom: true\n    requireX: 1")
        with pytest.raises(InvalidArgument, match="requireX"):
            stored_set(unknown, canonical, text_digest(canonical), "x")
