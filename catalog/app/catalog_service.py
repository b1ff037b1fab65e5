"""The catalog's operations, as the CLI and the gRPC servicers use them.

One place that opens sessions around the store's functions, so neither edge holds domain logic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog import metrics
from catalog.app.catalog_reads import CatalogReads
from catalog.errors import FailedPrecondition
from catalog.index.progress import IndexStats, ProgressCallback
from catalog.oci.options import RegistryOptions
from catalog.oci.secrets import Secrets
from catalog.principals import Principal
from catalog.store import queries
from catalog.store.audit import AuditKind, record, registry_resource, registry_version
from catalog.store.models import Registry
from catalog.store.registries import (
    INTERRUPTED,
    IndexStatus,
    RegistrySpec,
    create_registry,
    delete_registry,
    get_registry,
    index_ended,
    index_started,
    update_registry,
    validate_spec,
)

# Told, after each index run, the registry and when the run started (replication follows it).
AfterIndex = Callable[[str, datetime], object]


class CatalogService(CatalogReads):
    """The catalog's reads (:class:`CatalogReads`, on ORM sessions here), its changes and
    indexing."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        after_index: AfterIndex | None = None,
        secrets: Secrets | None = None,
        *,
        limits: RegistryOptions | None = None,
        index_deadline: float | None = None,
    ) -> None:
        super().__init__(sessions)
        self.sessions = sessions
        self.after_index = after_index
        # The named credentials, CA files and layout roots registries may use; none by default.
        self.secrets = secrets or Secrets()
        self.limits = limits  # of registry clients, and of a run (None: the defaults)
        self.index_deadline = index_deadline
        self._indexing: set[str] = set()
        self._run_locks: dict[str, asyncio.Lock] = {}

    def add_registry(self, spec: RegistrySpec) -> queries.RegistryView:
        """Add a registry whose secrets are names this process defines (never paths or
        variables: the caller may be anyone the server lets create registries)."""
        spec = validate_spec(spec)  # a URL's scheme becomes `insecure`
        self.secrets.check_registry(spec.host, spec.credentials_ref, spec.ca_file)
        with self.sessions.begin() as session:
            row = create_registry(session, spec)
            record(
                session,
                AuditKind.REGISTRY_CREATED,
                registry_resource(row.name),
                None,
                registry_version(row),
            )
            return queries.RegistryView.of(row)

    def get_registry(self, name: str) -> queries.RegistryView:
        with self.sessions() as session:
            return queries.RegistryView.of(get_registry(session, name))

    def remove_registry(self, name: str) -> None:
        with self.sessions.begin() as session:
            before = registry_version(get_registry(session, name))
            delete_registry(session, name)
            record(session, AuditKind.REGISTRY_DELETED, registry_resource(name), before, None)

    async def index(self, name: str, on_progress: ProgressCallback | None = None) -> IndexStats:
        """Crawl a registry now; one run per registry at a time in this process (scheduled and
        requested runs alike; a push-event run in progress finishes first). Its reads and
        writes of the store run on worker threads, never on the event loop the server's calls
        share."""
        await asyncio.to_thread(self.get_registry, name)
        if name in self._indexing:
            raise FailedPrecondition(f"registry {name!r} is being indexed already")
        # Imported here: the crawler and its HTTP client are for indexing, not for a query.
        from catalog.index.run import index_registry

        self._indexing.add(name)
        try:
            async with self._runs(name):
                started = datetime.now(UTC)
                await asyncio.to_thread(self._run_started, name, started)
                try:
                    stats = await index_registry(
                        self.sessions,
                        name,
                        self.secrets,
                        on_progress,
                        deadline=self.index_deadline,
                        limits=self.limits,
                    )
                except BaseException as exc:
                    # Failed, cancelled (the server stops) or Ctrl-C: the status must not stay
                    # "running". Written on a thread, shielded: a second cancellation cannot
                    # stop the write, and the loop is not held by it. Ctrl-C stops the loop
                    # itself, so that one is written here.
                    stopped = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
                    failure = INTERRUPTED if stopped else str(exc) or type(exc).__name__
                    if isinstance(exc, KeyboardInterrupt):
                        self._run_failed(name, failure)
                    else:
                        await asyncio.shield(asyncio.to_thread(self._run_failed, name, failure))
                    metrics.index_ran(name, "interrupted" if stopped else "failed", started)
                    raise
                await asyncio.to_thread(self._run_ended, name, stats.errors)
                metrics.index_ran(name, "errors" if stats.errors else "succeeded", started, stats)
        finally:
            self._indexing.discard(name)
        await self._after(name, started, stats)
        return stats

    async def index_repositories(
        self, name: str, repositories: Sequence[str], notifiers: Sequence[Principal] = ()
    ) -> IndexStats:
        """Crawl just ``repositories`` of registry ``name`` (push events). Waits for a run of
        the registry in progress here rather than overlapping it, so no repository is indexed
        twice at once; the registry's recorded run status is the full runs' alone. The run is
        recorded in the audit as each of ``notifiers``' doing (who sent the events)."""
        from catalog.index.run import index_registry

        async with self._runs(name):
            started = datetime.now(UTC)
            await asyncio.to_thread(self._push_run_started, name, len(repositories), notifiers)
            stats = await index_registry(
                self.sessions,
                name,
                self.secrets,
                deadline=self.index_deadline,
                limits=self.limits,
                repositories=repositories,
            )
        await self._after(name, started, stats)
        return stats

    def _runs(self, name: str) -> asyncio.Lock:
        return self._run_locks.setdefault(name, asyncio.Lock())

    async def _after(self, name: str, started: datetime, stats: IndexStats) -> None:
        if stats.tag_events and self.after_index is not None:
            await asyncio.to_thread(self.after_index, name, started)

    def _run_started(self, name: str, started: datetime) -> None:
        with self.sessions.begin() as session:
            before = get_registry(session, name).last_index_status
            index_started(session, name, started)
            record(
                session,
                AuditKind.INDEX_STARTED,
                registry_resource(name),
                before,
                IndexStatus.RUNNING,
            )

    def _push_run_started(
        self, name: str, repositories: int, notifiers: Sequence[Principal]
    ) -> None:
        detail = f"push events: {repositories} repositor{'y' if repositories == 1 else 'ies'}"
        resource = registry_resource(name)
        with self.sessions.begin() as session:
            for notifier in notifiers:
                record(session, AuditKind.INDEX_STARTED, resource, None, None, detail, notifier)

    def _run_failed(self, name: str, failure: str) -> None:
        with self.sessions.begin() as session:
            index_ended(session, name, datetime.now(UTC), None, failure)

    def _run_ended(self, name: str, errors: int) -> None:
        with self.sessions.begin() as session:
            index_ended(session, name, datetime.now(UTC), errors)


def apply_config_registries(session: Session, specs: Sequence[RegistrySpec]) -> None:
    """Bring the registries of the serve configuration into the store, in ``session``'s
    transaction: each one created or changed is an audit event (one left as it was is none, so
    a restart records nothing)."""
    for spec in specs:
        existing = session.scalar(select(Registry).where(Registry.name == spec.name))
        before = registry_version(existing) if existing is not None else None
        row = update_registry(session, spec)
        after = registry_version(row)
        if after != before:
            kind = AuditKind.REGISTRY_CREATED if before is None else AuditKind.REGISTRY_UPDATED
            record(session, kind, registry_resource(spec.name), before, after, "configuration")
