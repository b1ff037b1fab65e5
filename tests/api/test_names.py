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
