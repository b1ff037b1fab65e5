"""Queries and services answer with frozen view records, never ORM rows: what the CLI and the
API hold does not depend on a session or on the models."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog.app.catalog_service import CatalogService
from catalog.cli.context import Catalog
from catalog.oci.digest import Digest
from catalog.store import content, queries
from catalog.store.models import Base, IndexErrorRecord
from catalog.store.registries import RegistrySpec, create_registry, repository

DIGEST = str(Digest.of(b"image"))


def _mentions_a_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, Base):
        return True
    return any(_mentions_a_model(arg) for arg in typing.get_args(annotation))


def test_the_cli_protocol_names_no_model() -> None:
    methods = [m for name, m in inspect.getmembers(Catalog) if not name.startswith("_")]
    assert methods
    for method in methods:
        hints = typing.get_type_hints(method)
        assert not any(_mentions_a_model(h) for h in hints.values()), method.__name__


def test_lists_answer_with_views(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        reg = create_registry(s, RegistrySpec("local", "localhost:5000", repositories=("a/*",)))
        repo = repository(s, reg.id, "acme/api")
        content.set_tag(s, repo, None, "v1", DIGEST)
        s.add(IndexErrorRecord(registry_id=reg.id, repository="acme/api", reason="broken"))
    service = CatalogService(sessions)
    pages: list[queries.Page[Any]] = [
        service.list_registries(),
        service.list_repositories("local"),
        service.list_tags("local", "acme/api"),
        service.list_index_errors("local"),
    ]
    (registry,), (repo_view,), (tag,), (error,) = (p.items for p in pages)
    # Read after their sessions closed: plain values, nothing left to load.
    assert registry == queries.RegistryView(
        "local", "localhost:5000", False, None, None, ["a/*"], None, None, None
    )
    assert (repo_view.name, repo_view.gone_at) == ("acme/api", None)
    assert (tag.name, tag.digest, tag.gone_at) == ("v1", DIGEST, None)
    assert (error.repository, error.reference, error.reason) == ("acme/api", None, "broken")
    for item in (registry, repo_view, tag, error, service.get_registry("local")):
        assert not isinstance(item, Base)
        assert type(item).__name__.endswith("View")
        field = dataclasses.fields(item)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(item, field, None)
