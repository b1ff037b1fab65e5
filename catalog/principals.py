"""Who is acting: the principal a call runs for, readable anywhere below the edge that set it.

The API's authentication sets it for each call (:func:`acting_as`); a CLI command working on the
database directly runs as the local user. Records of who changed what, and of who asked for a
gate decision, read :func:`current`. A context variable, so it follows a call into
``asyncio.to_thread`` and into tasks it starts, and never leaks to another call.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import NamedTuple


class PrincipalKind(StrEnum):
    LOCAL = "local"  # the CLI on the database directly: the operating-system user
    ANONYMOUS = "anonymous"  # no credentials (loopback development servers only)
    TOKEN = "token"  # a static API token, by its configured name
    OIDC = "oidc"  # an OIDC JWT's subject (Kubernetes service accounts, CI workloads)
    CERTIFICATE = "cert"  # an mTLS client certificate's SAN or subject
    SERVER = "server"  # the server itself: schedules, index events, config


class Principal(NamedTuple):  # not a frozen dataclass: ~4.5M instructions of every command
    kind: PrincipalKind
    name: str
    groups: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


LOCAL = Principal(PrincipalKind.LOCAL, _local_user())
SERVER = Principal(PrincipalKind.SERVER, "xregistry")
ANONYMOUS = Principal(PrincipalKind.ANONYMOUS, "anonymous")

_current: ContextVar[Principal] = ContextVar("xregistry_principal", default=LOCAL)


def current() -> Principal:
    """Who the running code acts for (the local user unless an edge said otherwise)."""
    return _current.get()


PRINCIPAL_MAX = 512  # the store's principal columns' width (audit_events, decisions)


def principal_text(principal: Principal | None = None) -> str:
    """The principal (``current()`` by default) as the store's columns keep it. A name longer
    than they hold (a certificate subject, a crafted token claim) is cut and marked with ``…``:
    refusing the row would fail the change, or lose a whole batch of the decision log."""
    text = str(principal or current())
    return text if len(text) <= PRINCIPAL_MAX else text[: PRINCIPAL_MAX - 1] + "…"


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)
