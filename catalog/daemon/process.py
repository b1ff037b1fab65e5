"""``xregistry serve``: the gRPC services, scheduled indexing, and a replication worker."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import signal
from datetime import UTC, datetime
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from catalog import logs, metrics
from catalog.api.access import Access, AccessInterceptor
from catalog.api.admission import admission_listener
from catalog.api.audit_servicer import AuditServicer, audit_service
from catalog.api.catalog_servicer import CatalogServicer
from catalog.api.events_http import events_app
from catalog.api.gate_servicer import GateServicer
from catalog.api.http import HttpListener
from catalog.api.paging import PageTokens
from catalog.api.replication_servicer import ReplicationServicer
from catalog.api.server import (
    build_server,
    catalog_service,
    ensure_free,
    gate_service,
    replication_service,
)
from catalog.api.tls import server_credentials
from catalog.app.audit_service import AuditService
from catalog.app.catalog_service import CatalogService, apply_config_registries
from catalog.app.config import ServeConfig
from catalog.app.push_events import PushIndexer
from catalog.daemon import shared_pool
from catalog.daemon.observability import MetricsExport
from catalog.daemon.readiness import Conditions, DatabaseProbe, database_problem
from catalog.errors import CatalogError, CatalogUnreachable
from catalog.gate import DecisionLog, build_gate
from catalog.oci.errors import OCIError
from catalog.principals import ANONYMOUS, SERVER, acting_as
from catalog.schedules import trigger_for
from catalog.store.db import exclusive, make_engine, session_factory, upgrade
from catalog.store.registries import interrupt_index_runs
from catalog.trust.policy.stored import Policies
from replication.notify import listen
from replication.scheduling import RuleScheduler
from replication.service import ReplicationService
from replication.worker import TASK_DEADLINE, Worker

log = logging.getLogger("xregistry.serve")
GATE_SERVICE = "xregistry.v1.GateService"
# What a server's first index run, look-up and verification import. The CLI imports them on
# first use, for its start-up; a server imports them before it serves, because the first run
# would import them on the event loop and hold it (~75 ms here) while health and the gate wait.
_FIRST_USE = ("catalog.index.run", "catalog.index.live", "catalog.trust.verify")
_serving = 0  # servers of this process started and not stopped (tests run several at once)


def page_tokens() -> PageTokens:
    """Replicas share tokens when they share $XREGISTRY_PAGE_TOKEN_KEY (16+ bytes)."""
    key = os.environ.get("XREGISTRY_PAGE_TOKEN_KEY")
    return PageTokens(key.encode()) if key else PageTokens.random()


def open_database(database: str) -> tuple[Engine, set[str]]:
    """The server's database, its schema brought up to date first (replicas starting together
    take turns), and the revisions it was at; one line, not a driver's traceback, when it
    cannot be reached."""
    engine = make_engine(database)
    try:
        return engine, upgrade(engine)
    except BaseException as exc:
        engine.dispose()
        if isinstance(exc, OperationalError):
            raise CatalogUnreachable(database_problem(exc)) from None
        raise


def migrate(config: ServeConfig) -> set[str]:
    """``serve --migrate-only``: what the server does to its database at start, alone; returns
    the revisions the schema was at."""
    engine, before = open_database(config.database)
    engine.dispose()
    return before


class Server:
    """Everything ``serve`` runs, startable and stoppable from tests as from the CLI."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        # Refused before the database is touched: a bad exposure, TLS file or a taken port
        # changes nothing.
        for warning in config.exposure_warnings():
            log.warning("%s", warning)
        credentials = server_credentials(config.tls)
        ensure_free(config.listen)
        for module in _FIRST_USE:
            importlib.import_module(module)
        # One per process: the listeners share its OIDC keys and verified tokens.
        self.access = Access(config.auth)
        self.metrics = MetricsExport(config, self.access)
        self.engine, _ = open_database(config.database)
        self.sessions = session_factory(self.engine)
        with self.sessions.begin() as session, acting_as(SERVER):
            exclusive(session.connection())  # replicas starting together apply them in turn
            apply_config_registries(session, [r.spec() for r in config.registries])
            for name in interrupt_index_runs(session, datetime.now(UTC)):
                log.warning("the last index run of %s was interrupted", name)
        secrets = config.secrets.build()  # what registries may name: nothing else is read
        limits, registry_limits = config.limits, config.limits.registry.options()
        self.gate = build_gate(
            self.sessions,
            config.trust.build(),
            secrets,
            limits=registry_limits,
            audit=DecisionLog(self.sessions, **limits.decision_log.options()),
            public_strangers=True,
        )
        settings = config.replication
        self.worker = Worker(
            self.sessions,
            parallel=settings.workers,
            lease=settings.lease_seconds,
            poll=settings.poll_seconds,
            gate=lambda: self.gate,
            secrets=secrets,
            limits=registry_limits,
            task_deadline=limits.replication_task or TASK_DEADLINE,
        )
        self.replication = ReplicationService(self.sessions, wake=self.worker.wake)
        with acting_as(SERVER):  # the configuration's changes are the server's
            self.replication.apply_config_rules(settings.rules)
        self.catalog = CatalogService(
            self.sessions,
            after_index=self.replication.on_indexed,
            secrets=secrets,
            limits=registry_limits,
            index_deadline=limits.index_run,
        )
        self.push_events: PushIndexer | None = None
        self.listeners: list[HttpListener] = []
        if self.metrics.listener is not None:
            self.listeners.append(self.metrics.listener)
        if (events := config.events) is not None:
            self.push_events = PushIndexer(
                self.catalog, settle=events.settle, max_pending=events.max_pending
            )
            app = events_app(self.push_events, self.access)
            self.listeners.append(HttpListener("events", events.listen, app, tls=events.tls))
        tokens = page_tokens()
        self.access_interceptor = AccessInterceptor(self.access, limits.calls_at_once)
        self.server = build_server(
            config.listen,
            [
                catalog_service(CatalogServicer(self.catalog, tokens)),
                gate_service(
                    GateServicer(self.gate, Policies(self.sessions, self.gate.pki_names), tokens)
                ),
                replication_service(ReplicationServicer(self.replication, tokens)),
                audit_service(AuditServicer(AuditService(self.sessions), tokens)),
            ],
            interceptors=[self.access_interceptor],
            credentials=credentials,
        )
        # The Kubernetes admission webhook (HTTPS), when admission.listen is set.
        self.admission = admission_listener(
            config, self.gate, self.access, observe=_observe_admission
        )
        if self.admission is not None:
            self.listeners.append(self.admission)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.rules = RuleScheduler(self.scheduler, self.replication)
        self._stopping = asyncio.Event()
        self.health_port: int | None = None  # the plain-text health listener's, when set
        self._working: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self.conditions = Conditions(self.server)
        self.database_probe = DatabaseProbe(
            self.engine,
            interval=config.health.interval_seconds,
            timeout=config.health.timeout_seconds,
            on_change=partial(self.conditions.report, "database"),
        )
        self._probing: asyncio.Task[None] | None = None
        self._frozen = False  # counted in _serving

    @property
    def port(self) -> int:
        return self.server.port

    async def index(self, name: str) -> None:
        """Index ``name`` on its schedule (runs of rules that follow it start after)."""
        # The runs this starts are the server's doing, and its lines say so.
        with logs.context(registry=name), acting_as(SERVER):
            try:
                stats = await self.catalog.index(name)
            except (CatalogError, OCIError) as exc:
                log.error("scheduled index of %s failed: %s", name, exc)
                return
            except Exception:
                log.exception("scheduled index of %s failed", name)
                return
            done = f"with {stats.errors} errors" if stats.errors else "without errors"
            level = logging.WARNING if stats.errors else logging.INFO
            log.log(level, "indexed %s %s", name, done, extra=logs.fields(stats.as_dict()))

    async def start(self) -> None:
        # Blocking work on the threads of whose work it is: the gate's live look-ups on their
        # own, everything else on the loop's shared pool (catalog.threads).
        shared_pool.install(asyncio.get_running_loop())
        # The calls' context is copied from here: a call that no authentication identified acts
        # as anonymous, not as the user running the server (authentication sets it per call).
        with acting_as(ANONYMOUS):
            await self.server.start()
            if self.config.health.listen is not None:
                self.health_port = await self.server.serve_health_on(self.config.health.listen)
            for listener in self.listeners:
                await listener.start()
        for registry in self.config.registries:
            if registry.index is not None:
                self.scheduler.add_job(
                    self.index,
                    trigger_for(registry.index.as_text()),
                    args=[registry.name],
                    id=f"index:{registry.name}",
                    max_instances=1,
                    coalesce=True,
                    next_run_time=datetime.now(UTC),
                )
        self.rules.start()
        self.scheduler.start()
        self.gate.audit.on_health = self._decision_log_health
        self.gate.audit.start()
        # What the gauges read (the metrics listener is one of self.listeners, started above).
        self.metrics.start(self.engine, lambda: self.gate.audit.waiting, self.replication)
        self._probing = asyncio.create_task(self.database_probe.run(self._stopping))
        self._probing.add_done_callback(partial(_report_end, "the database probe"))
        self._working = asyncio.create_task(self.worker.run(self._stopping))
        self._working.add_done_callback(partial(_report_end, "the replication worker"))
        if self.engine.dialect.name == "postgresql":
            self._listening = asyncio.create_task(
                listen(self.engine.url, self.worker.wake, self._stopping)
            )
            self._listening.add_done_callback(partial(_report_end, "the replication listener"))
        _freeze_start_up()
        self._frozen = True
        tls = self.config.tls
        transport = "plain text" if tls is None else "mTLS" if tls.require_client_cert else "TLS"
        log.info("xregistry serving on port %d (%s)", self.port, transport)

    async def _decision_log_health(self, problem: str | None) -> None:
        """The gate denies what it cannot record: the server and the gate are NOT_SERVING
        while decisions cannot be written (the decision log's own line says why)."""
        await self.conditions.report("decision log", problem, [GATE_SERVICE])

    async def stop(self) -> None:
        try:
            await self._stop()
        finally:
            if self._frozen:
                self._frozen = False
                _thaw()

    async def _stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        self._stopping.set()
        # The worker hands unfinished tasks back to the other replicas; errors were logged.
        await asyncio.gather(
            *(t for t in (self._working, self._listening, self._probing) if t is not None),
            return_exceptions=True,
        )
        for listener in self.listeners:
            await listener.stop()
        if self.push_events is not None:
            await self.push_events.stop()
        await self.server.stop(grace=5.0)
        self.gate.close()  # no call left to answer: the live look-ups' threads end
        await self.metrics.stop()
        await self.gate.audit.stop()
        self.engine.dispose()


def _freeze_start_up() -> None:
    """What start-up built (modules, tables, descriptors: ~150,000 objects) lives as long as the
    process: frozen, no full collection walks it again. One took 50-100 ms, on the event loop
    when its allocations set it off, holding every call meanwhile. Not collected first (~100 ms
    a start; tests start hundreds): start-up's cyclic garbage, if any, stays until the last
    server of the process stops."""
    global _serving
    _serving += 1
    gc.freeze()


def _thaw() -> None:
    """Collectable again once no server runs: a process may go on without one (tests do)."""
    global _serving
    _serving -= 1
    if _serving == 0:
        gc.unfreeze()


def _observe_admission(_route: str, seconds: float, allowed: bool) -> None:
    metrics.observe_admission(seconds, "allowed" if allowed else "denied")


def _report_end(what: str, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", what, exc_info=task.exception())


async def serve(config: ServeConfig) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully (in-flight calls get 5 s)."""
    service = Server(config)
    await service.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down")
    await service.stop()
