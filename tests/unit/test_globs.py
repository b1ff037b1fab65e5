"""Repository globs mean one thing everywhere: ``*`` is one path segment, ``**`` any depth."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from catalog.errors import InvalidArgument
from catalog.oci.globs import check_repository_glob, matcher
from catalog.store.db import make_engine, upgrade
from catalog.store.registries import RegistrySpec, create_registry
from catalog.trust.policy.image_globs import check_glob, glob_regex
from replication.rules import RepositoryFilter

CASES: list[tuple[str, str, bool]] = [
    ("acme/*", "acme/api", True),
    ("acme/*", "acme/team/api", False),  # fnmatch said True: the registry filter used to
    ("acme/**", "acme/api", True),
    ("acme/**", "acme/team/api", True),
    ("acme/**/api", "acme/api", True),
    ("acme/*", "acmeco/api", False),
    ("acme/ap?", "acme/api", True),
    ("acme/ap?", "acme/ap/", False),
    ("acme/api", "acme/api", True),
    ("acme/api", "acme/api2", False),
]


@pytest.mark.parametrize(("glob", "name", "expected"), CASES)
def test_registry_filters_rules_and_policies_agree(glob: str, name: str, expected: bool) -> None:
    assert bool(matcher([glob]).fullmatch(name)) is expected  # registries' repositories
    assert RepositoryFilter(include=(glob,)).matches(name) is expected  # replication rules
    policy = glob_regex([check_glob(f"registry.acme.io/{glob}")])  # policies' image globs
    assert bool(policy.fullmatch(f"registry.acme.io/{name}")) is expected


def test_several_globs_and_none() -> None:
    either = matcher(["acme/*", "shop/**"])
    assert [n for n in ("acme/api", "acme/t/api", "shop/t/api", "x") if either.fullmatch(n)] == [
        "acme/api",
        "shop/t/api",
    ]
    assert matcher([]).fullmatch("") is None
    assert matcher([]).fullmatch("acme/api") is None


@pytest.mark.parametrize("glob", ["acme/[ab]*", "Acme/*", "acme api", ""])
def test_what_no_repository_glob_can_be(glob: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="repository glob"):
        check_repository_glob(glob)
    with pytest.raises(InvalidArgument, match="repository glob"):
        RepositoryFilter(include=(glob,))
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    spec = RegistrySpec("local", "localhost:5000", repositories=("acme/*", glob))
    with pytest.raises(InvalidArgument, match="repository glob"), Session(engine) as session:
        create_registry(session, spec)
    engine.dispose()
