"""Resource names: building, parsing, and the repository path escaping."""

from __future__ import annotations

import pytest

from catalog.api import names
from catalog.errors import InvalidArgument

DIGEST = "sha256:" + "ab" * 32


def test_repository_names_escape_slashes() -> None:
    name = names.repository_name("acme", "shop/api/v2")
    assert name == "registries/acme/repositories/shop%2Fapi%2Fv2"
    assert names.parse_repository_name(name) == ("acme", "shop/api/v2")
    assert names.parse_repository_name("registries/acme/repositories/shop%2fapi") == (
        "acme",
        "shop/api",
    )


def test_round_trips() -> None:
    assert names.parse_registry_name(names.registry_name("acme-eu1")) == "acme-eu1"
    tag = names.tag_name("acme", "shop/api", "1.4")
    assert tag == "registries/acme/repositories/shop%2Fapi/tags/1.4"
    assert names.parse_tag_name(tag) == ("acme", "shop/api", "1.4")
    assert names.parse_artifact_name(names.artifact_name(DIGEST)) == DIGEST


@pytest.mark.parametrize(
    ("parse", "name"),
    [
        (names.parse_registry_name, "registries/Acme"),
        (names.parse_registry_name, "registries/acme-"),
        (names.parse_registry_name, "registry/acme"),
        (names.parse_registry_name, "registries/"),
        (names.parse_repository_name, "registries/acme/repositories/shop/api"),
        (names.parse_repository_name, "registries/acme/repositories/Shop%2Fapi"),
        (names.parse_repository_name, "registries/acme/repositories/shop%20api"),
        (names.parse_repository_name, "registries/acme/repositories/shop%2F"),
        (names.parse_tag_name, "registries/acme/repositories/shop/tags/-bad"),
        (names.parse_tag_name, "registries/acme/repositories/shop/tag/1.4"),
        (names.parse_artifact_name, "artifacts/sha256:abc"),
        (names.parse_artifact_name, "artifacts/" + DIGEST + "/x"),
    ],
)
def test_malformed_names_are_invalid_arguments(parse: object, name: str) -> None:
    assert callable(parse)
    with pytest.raises(InvalidArgument, match="invalid"):
        parse(name)


def test_rule_run_and_policy_names_round_trip() -> None:
    assert names.parse_rule_name(names.rule_name("to-eu")) == "to-eu"
    assert names.run_name("to-eu", 42) == "rules/to-eu/runs/42"
    assert names.run_name(None, 42) == "rules/-/runs/42"
    assert names.parse_run_name("rules/to-eu/runs/42") == ("to-eu", 42)
    assert names.parse_run_name("rules/-/runs/42") == (None, 42)
    assert names.parse_runs_parent("rules/-") is None
    assert names.parse_runs_parent("rules/to-eu") == "to-eu"
    assert names.parse_policy_name(names.policy_name("default")) == "default"


@pytest.mark.parametrize(
    ("parse", "name"),
    [
        (names.parse_rule_name, "rules/-"),
        (names.parse_rule_name, "rules/to-eu\n"),
        (names.parse_rule_name, "rules/To-eu"),
        (names.parse_rule_name, "rule/to-eu"),
        (names.parse_run_name, "rules/to-eu/runs/0"),
        (names.parse_run_name, "rules/to-eu/runs/+1"),
        (names.parse_run_name, "rules/to-eu/runs/ 1"),
        (names.parse_run_name, "rules/to-eu/runs/1\n"),
        (names.parse_run_name, "rules/to-eu/runs/1" + "0" * 18),
        (names.parse_run_name, "rules/to_eu/runs/1"),
        (names.parse_runs_parent, "rules/*"),
        (names.parse_runs_parent, "rules/-/runs"),
        (names.parse_policy_name, "policies/default/versions/1"),
        (names.parse_policy_name, "policies/" + "a" * 64),
        (names.parse_registry_name, "registries/acme\n"),
    ],
)
def test_malformed_rule_run_and_policy_names(parse: object, name: str) -> None:
    assert callable(parse)
    with pytest.raises(InvalidArgument, match="invalid"):
        parse(name)
