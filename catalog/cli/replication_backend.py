"""How ``xregistry replicate rule|run|status`` reach replication: the database, or a server.

Both backends answer with :mod:`replication.service`'s records, so every command prints the same
way whichever it talks to. The database backend executes runs itself for ``run --wait``; against
a server, the server's workers do and the command follows the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import click

from catalog.cli.context import database_url, open_service, server_address
from catalog.errors import FailedPrecondition
from catalog.store.queries import Key, Page
from replication.service import RefusedRule, ReplicationService, RuleView, RunView
from replication.spec import RuleSpec
from replication.statuses import RuleOrigin

if TYPE_CHECKING:
    from catalog.app.catalog_service import CatalogService
    from catalog.gate.checker import Gate

OnRun = Callable[[RunView], None]


class Replication(Protocol):
    """What the commands need of replication: the database's, or a server's."""

    def put_rule(
        self,
        spec: RuleSpec,
        *,
        create: bool = True,
        replace: bool = True,
        origin: RuleOrigin = RuleOrigin.API,
    ) -> RuleView: ...

    def get_rule(self, name: str) -> RuleView: ...

    def list_rules(self) -> list[RuleView | RefusedRule]: ...

    def delete_rule(self, name: str) -> None: ...

    def start_run(self, rule: str) -> RunView:
        """A new manual run of ``rule``, pending."""
        ...

    def list_runs(
        self, rule: str | None = None, size: int = 0, after: Key | None = None
    ) -> Page[RunView]: ...

    def get_run(self, run_id: int, rule: str | None = None) -> RunView: ...

    async def follow(self, run_id: int, on_update: OnRun, *, parallel: int) -> RunView:
        """Until the run is finished, calling ``on_update`` as it changes → the finished run.
        ``parallel`` is the number of images copied at once where the run executes here."""
        ...

    @property
    def executes_here(self) -> bool:
        """Whether :meth:`follow` executes the run (rather than a server's workers)."""
        ...


class LocalReplication(ReplicationService):
    """The database's replication; ``follow`` runs the run here with a worker of its own."""

    executes_here = True

    def __init__(self, catalog: CatalogService) -> None:
        super().__init__(catalog.sessions)
        self.secrets = catalog.secrets  # the local user's (catalog.cli.context.local_secrets)

    def _gate(self) -> Gate:
        # Only rules with a policy ask for it; verification is heavy to set up.
        from catalog.app.trust_config import TrustSettings
        from catalog.gate import build_gate

        return build_gate(self.sessions, TrustSettings().build(), self.secrets)

    async def follow(self, run_id: int, on_update: OnRun, *, parallel: int) -> RunView:
        from replication.worker import Worker

        changed = asyncio.Event()
        worker = Worker(
            self.sessions, parallel=parallel, poll=0.5, gate=self._gate, secrets=self.secrets
        )
        work = asyncio.create_task(worker.finish(run_id, changed.set))
        last: RunView | None = None

        async def look() -> RunView:
            nonlocal last
            view = await asyncio.to_thread(self.get_run, run_id)
            if view != last:
                on_update(view)
                last = view
            return view

        try:
            while not (view := await look()).finished:
                if work.done():
                    work.result()  # the worker's error, if it had one
                    if not (view := await look()).finished:
                        raise FailedPrecondition(f"replication run {run_id} stopped unfinished")
                    break
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=0.5)
            await work
        finally:
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        return view


def open_replication(ctx: click.Context | None = None) -> Replication:
    """The replication of ``--server`` when set, else of the database (schema upgraded)."""
    ctx = ctx or click.get_current_context()
    server = server_address(ctx)
    if server:
        from catalog.cli.remote_replication import RemoteReplication

        return RemoteReplication(server)
    return LocalReplication(open_service(database_url(ctx)))
