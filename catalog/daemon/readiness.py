"""Readiness: the health service's statuses from the conditions the server depends on.

- :class:`Conditions` combines independent conditions (the database, the decision log): the
  whole server (``""``) is SERVING only while none has a problem; a service only while none of
  the conditions covering it has one.
- :class:`DatabaseProbe` is the database condition: every ``interval`` a fresh connection asks
  ``SELECT 1`` and the schema's revision (off the event loop, bounded by ``timeout``), so the
  server is NOT_SERVING while the database cannot be reached or its migrations are not the ones
  this version runs, and SERVING again once they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from grpc_health.v1 import health_pb2
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from catalog.api.server import ApiServer
from catalog.oci.boundedjson import first_line
from catalog.store.db import alembic_config

log = logging.getLogger("xregistry.serve")
_STATUS = health_pb2.HealthCheckResponse
_REASON_CHARS = 300  # of a driver's message: one line in a log, not a page


class Conditions:
    """What ``server``'s health service says, from named conditions and their problems."""

    def __init__(self, server: ApiServer) -> None:
        self._server = server
        self._problems: dict[str, tuple[str | None, frozenset[str]]] = {}

    async def report(
        self, condition: str, problem: str | None, services: Sequence[str] = ()
    ) -> None:
        """``condition`` has ``problem`` (None: none); it covers the whole server and
        ``services``. Call after the server started (its start sets everything SERVING)."""
        previous = self._problems.get(condition, (None, frozenset()))[1]
        self._problems[condition] = (problem, frozenset(services))
        for name in sorted({"", *services, *previous}):
            serving = not any(
                bad is not None and (name == "" or name in covered)
                for bad, covered in self._problems.values()
            )
            await self._server.health.set(name, _STATUS.SERVING if serving else _STATUS.NOT_SERVING)


class DatabaseProbe:
    """Asks the database every ``interval`` seconds; ``on_change(problem)`` when the answer
    changes (None: reachable and migrated)."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float,
        timeout: float,
        on_change: Callable[[str | None], Awaitable[None]],
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self._on_change = on_change
        self._heads = frozenset(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
        # Its own connections, opened per probe: the server's pool may be busy or hold
        # connections the database dropped, and a probe must not wait behind either.
        self._engine = create_engine(
            engine.url, poolclass=NullPool, connect_args=_bounded(engine, timeout)
        )
        self._running: asyncio.Future[str | None] | None = None
        self._problem: str | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Probe until ``stopping`` is set (the server was ready when it started)."""
        try:
            while not stopping.is_set():
                problem = await self.check()
                if problem != self._problem:
                    if problem is None:
                        log.info("ready again: the database answers and is migrated")
                    else:
                        log.warning("not ready: %s", problem)
                    self._problem = problem
                    await self._on_change(problem)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.interval)
        finally:
            self._engine.dispose()

    async def check(self) -> str | None:
        """What keeps the database from serving now, or None."""
        if self._running is None or self._running.done():
            # A thread cannot be cancelled: one stuck past its timeout is waited for, not
            # joined by another.
            self._running = asyncio.get_running_loop().run_in_executor(None, self._ask)
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), self.timeout + 1)
        except TimeoutError:
            return f"the database did not answer within {self.timeout:g} s"

    def _ask(self) -> str | None:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                heads = frozenset(MigrationContext.configure(connection).get_current_heads())
        except SQLAlchemyError as exc:
            return database_problem(exc)
        if heads != self._heads:
            have, want = ", ".join(sorted(heads)) or "none", ", ".join(sorted(self._heads))
            return (
                f"the database schema is at revision {have}, this version runs {want} "
                "(migrations pending: a restart migrates it; or a newer version's schema)"
            )
        return None


def _bounded(engine: Engine, timeout: float) -> dict[str, Any]:
    """Driver options that bound one probe's connection and statements by ``timeout``."""
    if engine.dialect.name == "postgresql":
        # libpq's connect_timeout is whole seconds, at least 2.
        return {
            "connect_timeout": max(2, round(timeout)),
            "options": f"-c statement_timeout={int(timeout * 1000)}",
        }
    return {"timeout": timeout}  # SQLite: how long to wait for a lock


def database_problem(exc: SQLAlchemyError) -> str:
    """One line saying the database cannot be reached, in the driver's own words (its first
    line, bounded: no URL, no SQL, so no password)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"the database cannot be reached: {first_line(cause, _REASON_CHARS)}"
