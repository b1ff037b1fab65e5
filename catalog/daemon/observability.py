"""The metrics side of ``serve``: the ``GET /metrics`` listener when ``metrics.listen`` is set,
what the replica's gauges read, and the per-rule lag refreshed from the store in the background
(a scrape never queries the database)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from catalog import metrics
from catalog.api.access import Access
from catalog.api.http import HttpListener
from catalog.api.metrics_http import metrics_app
from catalog.app.config import ServeConfig
from replication.service import ReplicationService, RuleView

log = logging.getLogger("xregistry.metrics")

MAX_RULES = 1000
"""Rules whose lag is exported; past that the rest are left out (and a line says so)."""
_PAGE = 100


class MetricsExport:
    def __init__(self, config: ServeConfig, access: Access) -> None:
        settings = config.metrics
        self.refresh = float(settings.refresh_seconds)
        self.listener: HttpListener | None = None
        self._refreshing: asyncio.Task[None] | None = None
        if settings.listen is None:
            return
        # Its exposure was checked with the other listeners' (ServeConfig.exposure_warnings).
        metrics.enable(settings.replica)
        self.listener = HttpListener(
            "metrics", settings.listen, metrics_app(access), tls=settings.tls
        )

    def start(
        self, engine: Engine, queued_decisions: Callable[[], int], rules: ReplicationService
    ) -> None:
        """What the gauges read, and the lag's refresh (the listener starts and stops with the
        server's other listeners)."""
        if self.listener is None:
            return
        metrics.watch(queued_decisions=queued_decisions, pool=_pool_use(engine))
        self._refreshing = asyncio.create_task(self._refresh_lag(rules))

    async def stop(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        if self.listener is not None:
            metrics.watch(queued_decisions=None, pool=None)

    async def _refresh_lag(self, rules: ReplicationService) -> None:
        while True:
            try:
                metrics.rule_lag(await asyncio.to_thread(rule_lag, rules))
            except Exception as exc:  # the store away: the gauges keep their last values
                log.warning("reading the replication lag for the metrics failed: %s", exc)
            await asyncio.sleep(self.refresh)


def rule_lag(rules: ReplicationService) -> dict[str, tuple[float, int]]:
    """Each rule's lag: rule → (seconds behind, pending changes), for up to MAX_RULES rules."""
    found: dict[str, tuple[float, int]] = {}
    after: str | None = None
    while len(found) < MAX_RULES:
        page = rules.list_rules(after, _PAGE)
        for view in page:
            if isinstance(view, RuleView):  # a rule this version refuses has no lag to export
                found[view.name] = (view.lag.seconds, view.lag.pending_changes)
        if len(page) < _PAGE:
            return found
        after = page[-1].name
    log.warning("replication lag exported for the first %d rules only", MAX_RULES)
    return found


def _pool_use(engine: Engine) -> Callable[[], tuple[int, int]] | None:
    pool = engine.pool
    if not isinstance(pool, QueuePool):  # SQLite in memory: one connection, nothing to watch
        return None
    return lambda: (pool.checkedout(), pool.size())
