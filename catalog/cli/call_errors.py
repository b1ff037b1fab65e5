"""A failed call to a ``--server`` → the CLI's error, in one place: every ``--server`` command
(catalog/cli/remote.py) and ``xregistry health``, so that a failure exits alike in both (README's
table), the domain exception a server names in ``xregistry-error-kind`` included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from catalog import errors
from catalog.api.errors import KIND_KEY
from catalog.cli.errors import CallerRefused, ServerUnavailable, ServerUnreachable, relayed

_ERRORS: dict[grpc.StatusCode, Callable[[str], Exception]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: CallerRefused,
    grpc.StatusCode.PERMISSION_DENIED: CallerRefused,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailable,
}
UNREACHED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
"""The codes of a call that may not have reached a server at all."""


def call_error(server: str, exc: grpc.RpcError, answers: bool) -> Exception:
    """The CLI's error for a failed call. UNAVAILABLE is two things: a server that cannot be
    reached, and a server that answered that a registry behind it is down; only the first is
    :class:`ServerUnreachable` (``answers``: whether a server answers a probe now)."""
    code = exc.code()
    # One line whatever the peer sent (the code's name when it sent no words).
    details = " ".join((exc.details() or "").split()) or code.name
    if code in UNREACHED and not answers:
        return ServerUnreachable(f"cannot reach the xregistry server at {server}: {details}")
    error = _ERRORS.get(code, errors.CatalogError)(details)
    metadata: Any = exc.trailing_metadata() or ()
    for key, value in metadata:  # (key, value) pairs, in grpc.aio's Metadata too
        if key == KIND_KEY and isinstance(value, str):
            return relayed(error, value)
    return error
