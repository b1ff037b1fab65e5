"""``xregistry serve``: the gRPC service with scheduled indexing."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from catalog.api.catalog_servicer import CatalogServicer
from catalog.api.gate_servicer import GateServicer
from catalog.api.paging import PageTokens
from catalog.api.server import build_server, catalog_service, gate_service
from catalog.config import ServeConfig, parse_duration
from catalog.errors import ConfigError
from catalog.service import CatalogService, build_gate
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import update_registry
from catalog.trust.policies import Policies

log = logging.getLogger("xregistry.serve")


def trigger_for(schedule: str) -> IntervalTrigger | CronTrigger:
    kind, _, value = schedule.partition(":")
    if kind == "interval":
        return IntervalTrigger(seconds=parse_duration(value))
    if kind == "cron":
        return CronTrigger.from_crontab(value, timezone=UTC)
    raise ConfigError(f"unknown index schedule {schedule!r}")


def page_tokens() -> PageTokens:
    """Replicas share tokens when they share $XREGISTRY_PAGE_TOKEN_KEY (32+ characters)."""
    key = os.environ.get("XREGISTRY_PAGE_TOKEN_KEY")
    return PageTokens(key.encode()) if key else PageTokens.random()


class Service:
    """Everything ``serve`` runs, startable and stoppable from tests as from the CLI."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.engine = make_engine(config.database)
        upgrade(self.engine)
        self.sessions = session_factory(self.engine)
        with self.sessions.begin() as session:
            for registry in config.registries:
                update_registry(session, registry.spec())
        self.catalog = CatalogService(self.sessions)
        self.gate = build_gate(self.sessions, config.trust.build())
        tokens = page_tokens()
        self.server = build_server(
            config.listen,
            [
                catalog_service(CatalogServicer(self.catalog, tokens)),
                gate_service(GateServicer(self.gate, Policies(self.sessions, self.gate.pki_names))),
            ],
        )
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    @property
    def port(self) -> int:
        return self.server.port

    async def _index(self, name: str) -> None:
        try:
            stats = await self.catalog.index(name)
            log.info("indexed %s: %s", name, stats.as_dict())
        except Exception:
            log.exception("scheduled index of %s failed", name)

    async def start(self) -> None:
        await self.server.start()
        for registry in self.config.registries:
            if registry.index is not None:
                self.scheduler.add_job(
                    self._index,
                    trigger_for(registry.index.as_text()),
                    args=[registry.name],
                    id=f"index:{registry.name}",
                    max_instances=1,
                    coalesce=True,
                    next_run_time=datetime.now(UTC),
                )
        self.scheduler.start()
        self.gate.audit.start()
        log.info("xregistry serving on port %d", self.port)

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        await self.server.stop(grace=5.0)
        await self.gate.audit.stop()
        self.engine.dispose()


async def serve(config: ServeConfig) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully (in-flight calls get 5 s)."""
    service = Service(config)
    await service.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down")
    await service.stop()
