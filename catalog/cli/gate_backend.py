"""How ``xregistry verify`` and ``xregistry policy`` reach the gate: the database, or a server.

Both backends answer with the gate's records (:class:`CheckResult`, :class:`PolicyView`), so the
commands print the same way whichever they talk to. With ``--server`` nothing local is opened:
the server judges with its own policies and trust settings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import click

from catalog.cli.context import database_url, open_service, server_address
from catalog.errors import InvalidArgument
from catalog.oci.secrets import Secrets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from catalog.gate.checker import CheckResult, Gate
    from catalog.trust.policy.stored import Policies, PolicyView


@dataclass(frozen=True, slots=True)
class PolicySource:
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
    """The gate on the database, verifying with Sigstore's production instance (and staging)."""

    def __init__(
        self, sessions: sessionmaker[Session], staging: bool, secrets: Secrets | None = None
    ) -> None:
        self.sessions = sessions
        self.staging = staging
        self.secrets = secrets  # what registries' names resolve to when asked live

    def gate(self) -> Gate:
        """The gate itself, for commands that drive it directly (`admission review`)."""
        from catalog.app.trust_config import TrustSettings
        from catalog.gate import build_gate

        settings = TrustSettings(
            sigstore=("production", "staging") if self.staging else ("production",)
        )
        return build_gate(self.sessions, settings.build(), self.secrets or Secrets())

    def check(
        self, image: str, policy: str, *, live: bool, offline: bool, adhoc: PolicySource | None
    ) -> CheckResult:
        gate = self.gate()
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
        return self._policies().list()

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
        from catalog.cli.remote_gate import RemoteGate

        return RemoteGate(server)
    return open_local_gate(staging, ctx)


def open_local_gate(staging: bool = False, ctx: click.Context | None = None) -> LocalGate:
    """The gate of the database (schema upgraded), whatever ``--server`` says."""
    service = open_service(database_url(ctx or click.get_current_context()))
    return LocalGate(service.sessions, staging, service.secrets)
