"""One name per thing: the catalog's NotFound, and the registry's 404 (NotInRegistry); both
reach callers as "not found" at the edges."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import grpc
import pytest

import catalog
import replication
from catalog import errors as domain
from catalog.api.errors import status_code_for
from catalog.cli.errors import EXIT_NOT_FOUND, exit_code
from catalog.oci import errors as oci


def test_one_class_is_named_not_found() -> None:
    found = set()
    for package in (catalog, replication):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            loaded = importlib.import_module(module.name)
            for name, value in inspect.getmembers(loaded, inspect.isclass):
                if name == "NotFound":
                    found.add(f"{value.__module__}.{value.__qualname__}")
    assert found == {"catalog.errors.NotFound"}


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, None, oci.NotInRegistry),
        (404, "MANIFEST_UNKNOWN", oci.ManifestUnknown),
        (404, "BLOB_UNKNOWN", oci.BlobUnknown),
        (404, "NAME_UNKNOWN", oci.NameUnknown),
    ],
)
def test_a_registry_404_is_not_in_registry(
    status: int, code: str | None, expected: type[oci.RegistryError]
) -> None:
    error = oci.error_for(status, code, "unknown", "https://r.example/v2/a/manifests/v1")
    assert type(error) is expected
    assert isinstance(error, oci.NotInRegistry)


@pytest.mark.parametrize(
    "error",
    [
        domain.NotFound("no registry named 'acme'"),
        oci.NotInRegistry("not found", status=404),
        oci.ManifestUnknown("manifest unknown", status=404),
    ],
)
def test_both_are_not_found_at_the_edges(error: Exception) -> None:
    assert status_code_for(type(error)) == grpc.StatusCode.NOT_FOUND
    assert exit_code(error) == EXIT_NOT_FOUND
