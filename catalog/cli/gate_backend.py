"""How ``xregistry verify`` and ``xregistry policy`` reach the gate: the database, or a server.

Both backends answer with the gate's records (:class:`CheckResult`, :class:`PolicyView`), so the
commands print the same way whichever they talk to. With ``--server`` nothing local is opened:
the server judges with its own policies and trust settings.
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple, Protocol

import click

from catalog.cli.context import (
    database_url,
    local_secrets,
    open_engine,
    opening,
    server_address,
)
from catalog.errors import InvalidArgument
from catalog.lazy import import_frozen

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from catalog.gate.checker import CheckResult, Gate
    from catalog.trust.policy.stored import Policies, PolicyView


class PolicySource(NamedTuple):
    """A policy set given as text, judged without being stored; ``origin`` names it in errors."""

    text: str
    origin: str


class GateBackend(Protocol):
    """What the commands need of the gate: the database's, or a server's."""

    def check(
        self, image: str, policy: str, *, live: bool, offline: bool, adhoc: PolicySource | None
    ) -> CheckResult:
        """The decision on ``image`` under stored policy set ``policy`` (or ``adhoc``)."""
        ...

    def evaluate(self, adhoc: PolicySource) -> list[CheckResult]:
        """What ``adhoc`` would decide for every tagged image of the catalog."""
        ...

    def apply_policy(self, name: str, source: str) -> tuple[PolicyView, bool]: ...

    def list_policies(self) -> list[PolicyView]: ...


class LocalGate:
    """The gate on the database, verifying with Sigstore's production instance (and staging).
    The ORM sessions, the gate and the user's secrets are made when first needed: listing the
    policy sets needs none of them, a warm check neither sessions nor secrets."""

    def __init__(self, engine: Engine, staging: bool) -> None:
        self.engine = engine
        self.staging = staging

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        from catalog.store.db import session_factory

        return session_factory(self.engine)

    def gate(self, *, inline: bool = False) -> Gate:
        """The gate itself, for commands that drive it directly (`admission review`); ``inline``
        when the command asks it once (no worker threads: see :class:`Gate`)."""
        # Imported as a command's module is: its objects frozen, never walked by a collection.
        import_frozen("catalog.gate.checker")
        from catalog.gate import build_gate
        from catalog.trust.roots import public_good

        # Sigstore's roots parsed only if a signature is verified now (a warm catalog has its
        # results).
        trust = public_good(staging=self.staging, parse_sigstore=False)
        # On the engine: the ORM's sessions are made only if a registry is asked.
        # The local user's secrets (and their config file) read only if a registry is asked.
        return build_gate(self.engine, trust, local_secrets, inline=inline)

    def check(
        self, image: str, policy: str, *, live: bool, offline: bool, adhoc: PolicySource | None
    ) -> CheckResult:
        gate = self.gate(inline=True)
        loaded = gate.adhoc(adhoc.text, adhoc.origin) if adhoc is not None else None
        return asyncio.run(
            gate.check(image, policy, resolve_live=live, offline=offline, adhoc=loaded)
        )

    def evaluate(self, adhoc: PolicySource) -> list[CheckResult]:
        gate = self.gate()
        return gate.evaluate_catalog(gate.adhoc(adhoc.text, adhoc.origin))

    def apply_policy(self, name: str, source: str) -> tuple[PolicyView, bool]:
        return self._policies().apply(name, source)

    def list_policies(self) -> list[PolicyView]:
        from catalog.store.policies import current_policies

        # Policies.list's query on a plain connection: no ORM session to import and set up.
        with self.engine.connect() as connection:
            return current_policies(connection)

    def _policies(self) -> Policies:
        # Storing and listing need no gate: the command line configures no PKI roots to check
        # policies against.
        from catalog.trust.policy.stored import Policies

        return Policies(self.sessions, set())


def open_gate(staging: bool = False, ctx: click.Context | None = None) -> GateBackend:
    """The gate of ``--server`` when set, else of the database (schema upgraded)."""
    ctx = ctx or click.get_current_context()
    server = server_address(ctx)
    if server:
        if staging:
            raise InvalidArgument(
                "--staging chooses the trust of a local check; with --server the server "
                "verifies with its own trust settings"
            )
        with opening():
            from catalog.cli.remote_gate import RemoteGate

            return RemoteGate(server)
    return local_gate(staging, ctx)


def local_gate(staging: bool, ctx: click.Context) -> LocalGate:
    """The gate on the database (schema upgraded), whatever --server says."""
    with opening():
        return LocalGate(open_engine(database_url(ctx)), staging)
