"""Replication's operations, as the gRPC servicer and the CLI use them: rules, runs, lag.

Views are plain records, so both edges print and convert the same things.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import InvalidArgument, NotFound
from catalog.heartbeats import HEARTBEAT
from catalog.principals import SERVER, Principal
from catalog.store.audit import (
    AuditKind,
    record,
    rule_resource,
    run_resource,
    settings_digest,
)
from catalog.store.db import exclusive
from catalog.store.models import Registry, Repository, Tag, TagEvent, utcnow
from catalog.store.queries import Key, Page, page_size
from replication import store
from replication.models import ReplicationRule, ReplicationRun
from replication.spec import RuleSpec
from replication.statuses import OPEN_RUN, RuleOrigin, RunStatus, TaskStatus, Trigger

log = logging.getLogger("xregistry.replication")
_FAILURES = 100  # failed tasks a run view lists
_WATCHED_RUNS = 1024  # runs whose latest read their watchers share, at most
_LAG_EVENTS = 10_000  # matching changes counted per lag estimate
_SCANNED = 200_000  # tag events read per look (a source busier than that reads as behind)
_CONFIGURATION = "configuration"  # the audit's detail of changes the serve configuration made


@dataclass(frozen=True, slots=True)
class TaskFailure:
    repository: str
    tag: str  # empty: the repository could not be listed
    status: TaskStatus  # failed | conflict | denied
    reason: str


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    rule: str
    trigger: Trigger
    scheduled_for: datetime | None
    status: RunStatus
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tasks_total: int
    tasks_done: int
    outcomes: dict[TaskStatus, int]  # task status → count
    counters: dict[str, int]  # manifests/blobs/bytes/referrers _copied/_skipped/_failed, …
    failures: tuple[TaskFailure, ...]

    @property
    def finished(self) -> bool:
        return self.status not in OPEN_RUN


@dataclass(frozen=True, slots=True)
class Lag:
    """How far the destination is behind the source, by what the store knows."""

    synced_at: datetime | None  # start of the newest run that copied everything
    pending_since: datetime | None  # the oldest source change not yet at the destination
    pending_changes: int  # tag changes the indexer saw since synced_at (capped)
    seconds: float  # now - pending_since; 0 when in step

    @property
    def in_sync(self) -> bool:
        return self.pending_since is None


@dataclass(frozen=True, slots=True)
class RuleView:
    spec: RuleSpec
    origin: RuleOrigin
    created_at: datetime
    updated_at: datetime
    last_run: RunView | None
    lag: Lag

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class RefusedRule:
    """A stored rule this version cannot read (a check it now fails, or a newer version's
    field): listed by name with ``reason``, never run, until it is replaced or deleted."""

    name: str
    origin: RuleOrigin
    created_at: datetime
    updated_at: datetime
    reason: str  # one line naming the rule


class ReplicationService:
    def __init__(
        self, sessions: sessionmaker[Session], wake: Callable[[], None] | None = None
    ) -> None:
        self.sessions = sessions
        self._wake = wake
        # A run's latest read for its watchers (when it was asked, and the read): however many
        # watch one run, the database is asked for it once an interval.
        self._watched: dict[int, tuple[float, asyncio.Future[RunView]]] = {}

    # -- rules -------------------------------------------------------------------------------

    def put_rule(
        self,
        spec: RuleSpec,
        *,
        create: bool = True,
        replace: bool = True,
        origin: RuleOrigin = RuleOrigin.API,
    ) -> RuleView:
        """Create the rule (if ``create``) or replace the one of that name (if ``replace``)."""
        with self.sessions.begin() as session:
            row = _put_rule(session, spec, origin, create=create, replace=replace)
            return self._rule_views(session, [(row, store.rule_spec(row))])[0]

    def get_rule(self, name: str) -> RuleView:
        with self.sessions() as session:
            row = store.get_rule(session, name)
            return self._rule_views(session, [(row, store.rule_spec(row))])[0]

    def list_rules(
        self, after: str | None = None, limit: int | None = None
    ) -> list[RuleView | RefusedRule]:
        """Rules by name, those after ``after``; at most ``limit`` of them. One this version
        cannot read is listed as refused: the others are still listed."""
        with self.sessions() as session:
            rows = store.list_rules(session, after, limit)
            readable, refused = [], {}
            for row in rows:
                try:
                    readable.append((row, store.rule_spec(row)))
                except InvalidArgument as exc:
                    refused[row.id] = RefusedRule(
                        row.name, RuleOrigin(row.origin), row.created_at, row.updated_at, str(exc)
                    )
            views = iter(self._rule_views(session, readable))
            return [refused.get(row.id) or next(views) for row in rows]

    def delete_rule(self, name: str) -> None:
        with self.sessions.begin() as session:
            before = _rule_version(store.get_rule(session, name))
            store.delete_rule(session, name)
            record(session, AuditKind.RULE_DELETED, rule_resource(name), before, None)

    def apply_config_rules(self, specs: Sequence[RuleSpec]) -> list[str]:
        """Store the config file's rules; drop config rules no longer in it → their names."""
        with self.sessions.begin() as session:
            exclusive(session.connection())  # replicas starting together apply them in turn
            for spec in specs:
                _put_rule(session, spec, RuleOrigin.CONFIG)
            versions = {
                row.name: _rule_version(row)
                for row in store.list_rules(session)
                if row.origin == RuleOrigin.CONFIG
            }
            gone = store.prune_config_rules(session, [s.name for s in specs])
            for name in gone:
                record(
                    session,
                    AuditKind.RULE_DELETED,
                    rule_resource(name),
                    versions.get(name),
                    None,
                    _CONFIGURATION,
                )
            return gone

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, rule: str) -> RunView:
        """A new manual run of ``rule``, pending (a manual run is never merged with another)."""
        run = self.trigger_run(rule, Trigger.MANUAL)
        if run is None:
            raise RuntimeError(f"no manual run of replication rule {rule!r} was created")
        return run

    def trigger_run(
        self, rule: str, trigger: Trigger = Trigger.MANUAL, scheduled_for: datetime | None = None
    ) -> RunView | None:
        """A new run of ``rule``. A scheduled one is made once per scheduled time (None when
        another replica made it) and not while the rule's previous run is still open."""
        with self.sessions.begin() as session:
            row = store.get_rule(session, rule)
            if trigger == Trigger.SCHEDULE and store.has_open_run(session, row.id, OPEN_RUN):
                log.info("replication rule %s: previous run still open, schedule skipped", rule)
                return None
            run = store.create_run(session, row, trigger, scheduled_for)
            view = self._run_view(session, run, row.name) if run is not None else None
            if view is not None:
                # A schedule firing is the server's doing, whoever made the rule.
                by = SERVER if trigger == Trigger.SCHEDULE else None
                _record_run(session, view, by)
        if view is not None and self._wake is not None:
            self._wake()
        return view

    def list_runs(
        self, rule: str | None = None, size: int = 0, after: Key | None = None
    ) -> Page[RunView]:
        """Newest first; ``after`` is the ``next_after`` of the page before: ``(run id,)``."""
        size = page_size(size)
        with self.sessions() as session:
            rule_id = store.get_rule(session, rule).id if rule else None
            runs = store.list_runs(session, rule_id, size + 1, _run_id(after))
            page = runs[:size]
            shown = {run.rule_id for run in page}
            names = dict(
                session.execute(
                    select(ReplicationRule.id, ReplicationRule.name).where(
                        ReplicationRule.id.in_(shown)
                    )
                ).all()
            )
            views = self._run_views(session, page, names, failures=0)
        return Page(views, (views[-1].id,) if len(runs) > size else None)

    def get_run(self, run_id: int, rule: str | None = None) -> RunView:
        """Run ``run_id``; when ``rule`` is given, it must be a run of that rule."""
        with self.sessions() as session:
            run = store.get_run(session, run_id)
            row = session.get(ReplicationRule, run.rule_id)
            name = row.name if row else ""
            if rule is not None and rule != name:
                raise NotFound(f"replication run {run_id} is not a run of rule {rule!r}")
            return self._run_view(session, run, name)

    async def watch_run(
        self, run_id: int, interval: float = 0.5, heartbeat: float = HEARTBEAT
    ) -> AsyncIterator[RunView]:
        """The run each time it changes, and unchanged every ``heartbeat`` seconds (a watcher
        tells a long copy from a silent server), ending with it finished."""
        last: RunView | None = None
        sent = 0.0
        while True:
            view = await self._watched_view(run_id, interval)
            if view != last or time.monotonic() - sent >= heartbeat:
                yield view
                last, sent = view, time.monotonic()
            if view.finished:
                return
            await asyncio.sleep(interval)

    async def _watched_view(self, run_id: int, interval: float) -> RunView:
        """The run as read at most ``interval`` seconds ago, for every watcher of it alike."""
        now, loop = time.monotonic(), asyncio.get_running_loop()
        held = self._watched.get(run_id)
        if held is None or now - held[0] >= interval or held[1].get_loop() is not loop:
            if len(self._watched) >= _WATCHED_RUNS:  # the oldest read goes
                del self._watched[min(self._watched, key=lambda run: self._watched[run][0])]
            read = asyncio.ensure_future(asyncio.to_thread(self.get_run, run_id))
            # Its failure is retrieved even when every watcher that awaited it has left.
            read.add_done_callback(lambda done: done.cancelled() or done.exception())
            held = now, read
            self._watched[run_id] = held
        reading = held[1]
        try:
            return await asyncio.shield(reading)  # one watcher leaving ends no other's read
        except Exception:
            if self._watched.get(run_id, (0.0, None))[1] is reading:
                del self._watched[run_id]  # a failed read is not kept for the next ones
            raise

    def on_indexed(self, registry: str, since: datetime) -> list[RunView]:
        """Runs for the rules that follow index events on ``registry`` and match a tag the
        indexer saw new or moved since ``since``; a rule with a run waiting gets none."""
        started = []
        with self.sessions.begin() as session:
            for row in store.list_rules(session, source=registry):
                try:
                    spec = store.rule_spec(row)
                except InvalidArgument as exc:  # the other rules still follow the index
                    log.error("%s; index events do not run it", exc)
                    continue
                if not spec.on_index:
                    continue
                if store.has_open_run(session, row.id) or not _changes(session, spec, since, 1):
                    continue
                run = store.create_run(session, row, Trigger.INDEX)
                if run is not None:
                    view = self._run_view(session, run, row.name)
                    _record_run(session, view)  # whoever's index found the changes
                    started.append(view)
        if started and self._wake is not None:
            self._wake()
        return started

    # -- views -------------------------------------------------------------------------------

    def _run_view(self, session: Session, run: ReplicationRun, rule: str) -> RunView:
        return self._run_views(session, [run], {run.rule_id: rule}, failures=_FAILURES)[0]

    def _run_views(
        self,
        session: Session,
        runs: Sequence[ReplicationRun],
        names: dict[int, str],
        failures: int,
    ) -> list[RunView]:
        session.flush()
        totals = store.run_totals(session, [r.id for r in runs])
        views = []
        for run in runs:
            total = totals[run.id]
            failed = store.failed_tasks(session, run.id, failures) if failures else []
            views.append(
                RunView(
                    id=run.id,
                    rule=names.get(run.rule_id, ""),
                    trigger=Trigger(run.trigger),
                    scheduled_for=run.scheduled_for,
                    status=RunStatus(run.status),
                    error=run.error,
                    created_at=run.created_at,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    tasks_total=total.tasks,
                    tasks_done=total.done,
                    outcomes={TaskStatus(k): n for k, n in sorted(total.outcomes.items())},
                    counters=total.counters,
                    failures=tuple(
                        TaskFailure(
                            t.source_repository, t.tag, TaskStatus(t.status), t.reason or ""
                        )
                        for t in failed
                    ),
                )
            )
        return views

    def _rule_views(
        self, session: Session, rules: Sequence[tuple[ReplicationRule, RuleSpec]]
    ) -> list[RuleView]:
        """Views of ``rules`` (rows and their specs): their newest runs and those runs' totals
        read for all at once."""
        rows = [row for row, _ in rules]
        ids = [row.id for row in rows]
        last = store.latest_runs(session, ids)
        synced = store.latest_runs(session, ids, (RunStatus.SUCCEEDED,))
        failed = store.latest_runs(session, ids, (RunStatus.FAILED,))
        names = {row.id: row.name for row in rows}
        runs = {v.id: v for v in self._run_views(session, list(last.values()), names, _FAILURES)}
        views = []
        for row, spec in rules:
            newest = last.get(row.id)
            views.append(
                RuleView(
                    spec=spec,
                    origin=RuleOrigin(row.origin),
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                    last_run=runs[newest.id] if newest is not None else None,
                    lag=lag(session, row, spec, synced.get(row.id), failed.get(row.id)),
                )
            )
        return views


def lag(
    session: Session,
    row: ReplicationRule,
    spec: RuleSpec,
    synced: ReplicationRun | None,
    failed: ReplicationRun | None,
) -> Lag:
    """The destination is in step as of the start of the newest run that copied everything
    (``synced``). Behind it: tag changes the indexer saw on the source since (when the source
    is indexed), and anything a later run failed to copy (``failed``, the newest failed run;
    dated, conservatively, from that start)."""
    now = utcnow()
    synced_at = (synced.started_at or synced.created_at) if synced is not None else None
    baseline = synced_at or row.created_at
    failed_since = failed is not None and (synced is None or failed.id > synced.id)
    changes = _changes(session, spec, baseline, _LAG_EVENTS)
    pending: datetime | None = None
    if synced is None or failed_since:
        pending = baseline
    elif changes:
        pending = changes[0]
    return Lag(
        synced_at=synced_at,
        pending_since=pending,
        pending_changes=len(changes),
        seconds=max(0.0, (now - pending).total_seconds()) if pending is not None else 0.0,
    )


def _changes(session: Session, spec: RuleSpec, since: datetime, limit: int) -> list[datetime]:
    """When the indexer saw the source's matching tags appear or move after ``since``, oldest
    first: up to ``limit`` of them, among at most ``_SCANNED`` events."""
    rule = spec.rule("", "")
    rows = session.execute(
        select(Repository.name, Tag.name, TagEvent.observed_at)
        .join(Tag, Tag.id == TagEvent.tag_id)
        .join(Repository, Repository.id == Tag.repository_id)
        .join(Registry, Registry.id == Repository.registry_id)
        .where(
            Registry.name == spec.source,
            TagEvent.observed_at > since,
            TagEvent.new_digest.is_not(None),
        )
        .order_by(TagEvent.observed_at)
        .limit(_SCANNED)
        .execution_options(yield_per=1000)
    )
    found = []
    for repository, tag, seen in rows:
        if rule.repositories.matches(repository) and rule.tags.admits(tag):
            found.append(seen)
            if len(found) >= limit:
                break
    rows.close()
    return found


def _rule_version(row: ReplicationRule) -> str:
    return settings_digest(row.spec)


def _put_rule(
    session: Session,
    spec: RuleSpec,
    origin: RuleOrigin,
    *,
    create: bool = True,
    replace: bool = True,
) -> ReplicationRule:
    """``store.put_rule``, recorded when it created the rule or changed its settings or origin
    (a configuration applied again unchanged records nothing)."""
    existing = store.find_rule(session, spec.name)
    before = _rule_version(existing) if existing is not None else None
    before_origin = existing.origin if existing is not None else None
    row = store.put_rule(session, spec, origin, create=create, replace=replace)
    after = _rule_version(row)
    detail = _CONFIGURATION if origin == RuleOrigin.CONFIG else None
    if before is None:
        record(session, AuditKind.RULE_CREATED, rule_resource(spec.name), None, after, detail)
    elif after != before or origin != before_origin:
        record(session, AuditKind.RULE_UPDATED, rule_resource(spec.name), before, after, detail)
    return row


def _record_run(session: Session, run: RunView, principal: Principal | None = None) -> None:
    detail = f"trigger: {run.trigger}"
    resource = run_resource(run.rule, run.id)
    record(session, AuditKind.RUN_TRIGGERED, resource, None, run.status, detail, principal)


def _run_id(after: Key | None) -> int | None:
    """The run id a runs page key holds."""
    if after is None:
        return None
    (run_id,) = after
    if not isinstance(run_id, int):
        raise InvalidArgument("a runs page starts after a run id")
    return run_id
