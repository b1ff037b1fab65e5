"""Registry push events → an incremental index of exactly the repositories pushed to.

A registry's notification (Distribution's envelope, :func:`distribution_events`) names the
repository and tag of each manifest pushed or deleted. :class:`PushIndexer` turns them into
index runs of just those repositories, then the rules that follow index events run
(``CatalogService.after_index``):

- Bursts coalesce: a registry's events gather for ``settle`` seconds, then one run crawls every
  repository they named; events arriving during a run make the next one. So a registry never has
  more than one event run at a time in this process, and 100 pushes cost a handful of runs.
- An event already queued for that registry (its id) is acknowledged and ignored: registries
  retry deliveries. Ids of events not queued are not kept: delivered again, they are judged
  again (one dropped while the queue was full is queued once there is room).
- An event for an unknown registry, an image layout, or a repository outside the registry's
  filters is acknowledged and ignored. A registry's filters are read once per
  :data:`FILTER_TTL` seconds, not per delivery (a change made by another process — the CLI on
  the same database, a replica — cannot be heard here), and again by each run (with the
  registry's settings), which indexes only the repositories they still admit.
- Nothing here is needed for correctness: a lost event (the server was down, the queue full)
  costs only freshness, since scheduled indexing walks every repository anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.app.catalog_service import CatalogService
from catalog.errors import InvalidArgument, NotFound
from catalog.oci import mediatypes as mt
from catalog.oci.boundedjson import JSONRefused, loads
from catalog.oci.errors import InvalidReference
from catalog.oci.globs import matcher
from catalog.oci.reference import validate_repository, validate_tag
from catalog.principals import SERVER, Principal, acting_as, current

log = logging.getLogger("xregistry.events")

DISTRIBUTION_EVENTS = "application/vnd.docker.distribution.events.v1+json"
MAX_EVENTS = 1000  # per envelope; Distribution sends up to its `threshold` at once
_ACTIONS = frozenset({"push", "delete"})
FILTER_TTL = 5.0  # seconds a registry's filters are used before being read again
NOTIFIERS = 16  # principals recorded as the senders of the events one run answers, at most

Wanted = Callable[[str], bool]  # whether a repository of the registry is indexed


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One manifest pushed or deleted (blob and pull events are not kept)."""

    id: str
    action: str
    repository: str
    tag: str | None = None


@dataclass(slots=True)
class Accepted:
    """What became of one delivery's events."""

    queued: int = 0
    duplicates: int = 0
    ignored: int = 0

    def as_json(self) -> dict[str, int]:
        return {"queued": self.queued, "duplicates": self.duplicates, "ignored": self.ignored}


def distribution_events(body: bytes) -> list[PushEvent]:
    """The manifest events of a Distribution notification envelope (``{"events": [...]}``).

    An envelope that is not one is :class:`InvalidArgument` (one line); an event in it that
    names no repository, an invalid one or a blob is skipped, not fatal: the others still count.
    """
    try:
        document: Any = loads(body, max_depth=16, max_values=200_000)
    except JSONRefused as exc:
        raise InvalidArgument(f"not a notification envelope: {exc}") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise InvalidArgument('not a notification envelope: no "events" list')
    if len(events) > MAX_EVENTS:
        raise InvalidArgument(f"more than {MAX_EVENTS} events in one envelope")
    return [event for raw in events if (event := _event(raw)) is not None]


def _event(raw: Any) -> PushEvent | None:
    if not isinstance(raw, dict):
        return None
    target = raw.get("target")
    action, event_id = raw.get("action"), raw.get("id")
    if action not in _ACTIONS or not isinstance(target, dict) or not isinstance(event_id, str):
        return None
    media_type, tag = target.get("mediaType"), target.get("tag")
    # Pushes of blobs carry their own media types; deletes of manifests may carry none.
    if action == "push" and media_type not in mt.MANIFESTS | {mt.OCI_ARTIFACT_MANIFEST}:
        return None
    try:
        repository = validate_repository(str(target.get("repository", "")))
        tag = validate_tag(tag) if isinstance(tag, str) and tag else None
    except InvalidReference:
        return None
    return PushEvent(event_id[:200], action, repository, tag)


class PushIndexer:
    """Queues push events per registry and runs one repository-scoped index at a time each."""

    def __init__(
        self,
        catalog: CatalogService,
        *,
        settle: float = 0.1,
        max_pending: int = 10_000,
        remember: int = 10_000,
        filter_ttl: float = FILTER_TTL,
    ) -> None:
        self.catalog = catalog
        self.settle = settle
        self.max_pending = max_pending
        self.filter_ttl = filter_ttl
        self._remember = remember
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()  # (registry, event id)
        # Known registries only (bounded by the catalog): an unknown name is read each time.
        self._filters: dict[str, tuple[float, Wanted]] = {}
        self._pending: dict[str, set[str]] = {}
        # Who sent the events waiting, per registry: the audit records the runs as theirs. At
        # most NOTIFIERS each (principals a binding grants notify, e.g. a group, may be many).
        self._notifiers: dict[str, dict[str, Principal]] = {}  # by name: groups may differ
        self._wakeups: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self.runs = 0  # event runs finished (or failed): how bursts coalesced

    async def accept(self, registry: str, events: Sequence[PushEvent]) -> Accepted:
        """Queue ``events`` for ``registry``; returns at once (the runs happen after)."""
        accepted = Accepted()
        fresh = [e for e in events if not self._already_seen(registry, e.id)]
        accepted.duplicates = len(events) - len(fresh)
        if not fresh:
            return accepted
        wanted = await self._wanted(registry)
        if wanted is None:  # no queue for a name the catalog does not know: callers choose it
            accepted.ignored = len(fresh)
            return accepted
        pending = self._pending.setdefault(registry, set())
        waiting = sum(len(p) for p in self._pending.values())
        for event in fresh:
            if self._already_seen(registry, event.id):  # twice in this envelope
                accepted.duplicates += 1
            elif not wanted(event.repository):
                accepted.ignored += 1
            elif event.repository in pending:
                self._saw(registry, event.id)
                accepted.queued += 1  # coalesced with an event already waiting
            elif waiting >= self.max_pending:
                # Dropped, said once per delivery: the next scheduled index catches up.
                log.warning(
                    "push event for %s/%s dropped: %d repositories already wait",
                    registry,
                    event.repository,
                    self.max_pending,
                )
                accepted.ignored += 1
            else:
                self._saw(registry, event.id)
                pending.add(event.repository)
                waiting += 1
                accepted.queued += 1
        if accepted.queued:
            notifiers = self._notifiers.setdefault(registry, {})
            if len(notifiers) < NOTIFIERS:
                notifier = current()
                notifiers.setdefault(str(notifier), notifier)
            self._wake(registry)
        return accepted

    def _already_seen(self, registry: str, event_id: str) -> bool:
        key = (registry, event_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def _saw(self, registry: str, event_id: str) -> None:
        self._seen[(registry, event_id)] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)

    async def _wanted(self, registry: str) -> Wanted | None:
        """The registry's filter, read again when older than ``filter_ttl``."""
        cached = self._filters.get(registry)
        if cached is not None and time.monotonic() - cached[0] < self.filter_ttl:
            return cached[1]
        wanted = await asyncio.to_thread(self._filter, registry)
        if wanted is None:
            self._filters.pop(registry, None)
        else:
            self._filters[registry] = (time.monotonic(), wanted)
        return wanted

    def _filter(self, registry: str) -> Wanted | None:
        """A predicate for the repositories of ``registry`` to index, or None when events for
        it are ignored (unknown, or an image layout)."""
        try:
            view = self.catalog.get_registry(registry)
        except NotFound:
            return None
        if view.host.startswith("oci:"):
            return None
        patterns = list(view.repositories)
        if not patterns:
            return lambda _: True
        wanted = matcher(patterns)
        return lambda name: wanted.fullmatch(name) is not None

    def _wake(self, registry: str) -> None:
        self._wakeups.setdefault(registry, asyncio.Event()).set()
        worker = self._workers.get(registry)
        if worker is None or worker.done():
            self._workers[registry] = asyncio.create_task(
                self._work(registry), name=f"push-events:{registry}"
            )

    async def _work(self, registry: str) -> None:
        wakeup = self._wakeups[registry]
        while True:
            await wakeup.wait()
            await asyncio.sleep(self.settle)  # let the rest of a burst arrive
            wakeup.clear()
            # The run applies the registry's filters as they are now (read with its settings).
            repositories = sorted(self._pending.pop(registry, set()))
            notifiers = sorted(self._notifiers.pop(registry, {}).values())
            if not repositories:
                continue
            try:
                with acting_as(SERVER):  # the crawl is the server's doing, on their notice
                    stats = await self.catalog.index_repositories(registry, repositories, notifiers)
            except Exception as exc:  # logged and left to the schedule: events are best effort
                log.warning(
                    "index of %s after push events failed (%d repositories): %s",
                    registry,
                    len(repositories),
                    exc,
                )
            else:
                log.info(
                    "indexed %s after push events: repositories=%d tagEvents=%d errors=%d",
                    registry,
                    len(repositories),
                    stats.tag_events,
                    stats.errors,
                )
            finally:
                self.runs += 1

    async def stop(self) -> None:
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers.clear()
