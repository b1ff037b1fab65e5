"""Domain errors → one-line messages and exit codes, in one place."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from catalog import errors as domain
from catalog.oci import errors as oci

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 4
EXIT_AUTH = 5
EXIT_INVALID_CONTENT = 6
EXIT_ERROR = 1

# First match wins: subclasses before their bases.
_EXIT_CODES: list[tuple[type[Exception], int]] = [
    (domain.InvalidArgument, EXIT_USAGE),
    (domain.ConfigError, EXIT_USAGE),
    (domain.NotFound, EXIT_NOT_FOUND),
    (domain.CatalogError, EXIT_ERROR),
    (oci.InvalidReference, EXIT_USAGE),
    (oci.InvalidDigest, EXIT_USAGE),
    (oci.NotInRegistry, EXIT_NOT_FOUND),
    (oci.LayoutError, EXIT_NOT_FOUND),
    (oci.RegistryUnavailable, EXIT_UNAVAILABLE),
    (oci.AuthError, EXIT_AUTH),
    (oci.Unauthorized, EXIT_AUTH),
    (oci.Denied, EXIT_AUTH),
    (oci.DigestMismatch, EXIT_INVALID_CONTENT),
    (oci.SizeMismatch, EXIT_INVALID_CONTENT),
    (oci.InvalidManifest, EXIT_INVALID_CONTENT),
    (oci.ManifestTooLarge, EXIT_INVALID_CONTENT),
    (oci.OCIError, EXIT_ERROR),
]


def exit_code(exc: Exception) -> int:
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_ERROR


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a domain error into ``xregistry: error: …`` on stderr and its exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (oci.OCIError, domain.CatalogError) as exc:
            print(f"xregistry: error: {exc}", file=sys.stderr)
            raise SystemExit(exit_code(exc)) from None

    return wrapper
