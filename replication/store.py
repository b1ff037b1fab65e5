"""Rules, runs and tasks in SQL, and the claims that let many workers share them.

Every claim is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on
PostgreSQL concurrent claimers skip each other's rows; SQLite ignores ``FOR UPDATE`` and runs the
statement under its one writer lock, which is just as atomic. A claim is a lease: a worker that
dies stops renewing it, and once it has expired any worker claims the work again. Times are the
workers' clocks (UTC), so replicas need them roughly in step (NTP) — leases are tens of seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from catalog.store.models import Registry, utcnow
from replication.models import TASK_COUNTERS, ReplicationRule, ReplicationRun, ReplicationTask
from replication.notify import announce
from replication.spec import RuleSpec, parse_spec
from replication.statuses import (
    FAILED_TASK,
    OPEN_TASK,
    UNCOPIED_TASK,
    RuleOrigin,
    RunStatus,
    TaskStatus,
    Trigger,
)

MAX_ATTEMPTS = 5  # claims of one task before it fails
Run = ReplicationRun
Task = ReplicationTask


def _unheld(model: type[Run] | type[Task], ids: Select[int]) -> ColumnElement[bool]:
    """``model.id IN (ids FOR UPDATE SKIP LOCKED)``: the rows no concurrent claimer holds
    (SQLite renders no ``FOR UPDATE``; its one writer makes the statement atomic instead)."""
    return model.id.in_(ids.with_for_update(of=model, skip_locked=True).scalar_subquery())


# -- rules -------------------------------------------------------------------------------------


def _check_registries(session: Session, spec: RuleSpec) -> None:
    for name in (spec.source, spec.destination):
        if session.scalar(select(Registry.id).where(Registry.name == name)) is None:
            raise NotFound(f"registry {name!r} is not in the catalog: add it first")


def put_rule(
    session: Session,
    spec: RuleSpec,
    origin: RuleOrigin = RuleOrigin.API,
    *,
    create: bool = True,
    replace: bool = True,
) -> ReplicationRule:
    """Store ``spec`` under its name: create the rule when there is none (if ``create``), and
    replace the rule of that name when there is one (if ``replace``)."""
    _check_registries(session, spec)
    row = session.scalar(select(ReplicationRule).where(ReplicationRule.name == spec.name))
    data = spec.model_dump(mode="json")
    if row is None and not create:
        raise NotFound(f"replication rule {spec.name!r} does not exist")
    if row is None:
        row = ReplicationRule(name=spec.name, source_registry=spec.source, spec=data, origin=origin)
        session.add(row)
    elif not replace:
        raise AlreadyExists(f"replication rule {spec.name!r} already exists")
    elif row.origin == RuleOrigin.CONFIG and origin != RuleOrigin.CONFIG:
        raise _from_config(spec.name)
    else:
        row.source_registry, row.spec, row.origin, row.updated_at = (
            spec.source,
            data,
            origin,
            utcnow(),
        )
    session.flush()
    return row


def find_rule(session: Session, name: str) -> ReplicationRule | None:
    return session.scalar(select(ReplicationRule).where(ReplicationRule.name == name))


def get_rule(session: Session, name: str) -> ReplicationRule:
    row = find_rule(session, name)
    if row is None:
        raise NotFound(f"replication rule {name!r} does not exist")
    return row


def rule_spec(row: ReplicationRule) -> RuleSpec:
    """The stored rule; one stored before a check it now fails is refused naming it."""
    try:
        return parse_spec(row.spec)
    except InvalidArgument as exc:
        raise InvalidArgument(f"stored rule {row.name!r}: {exc}") from None


def list_rules(
    session: Session,
    after: str | None = None,
    limit: int | None = None,
    *,
    source: str | None = None,
) -> Sequence[ReplicationRule]:
    """Rules by name: those after ``after``, at most ``limit``, only from ``source`` if given."""
    query = select(ReplicationRule).order_by(ReplicationRule.name).limit(limit)
    if after is not None:
        query = query.where(ReplicationRule.name > after)
    if source is not None:
        query = query.where(ReplicationRule.source_registry == source)
    return session.scalars(query).all()


def delete_rule(session: Session, name: str) -> None:
    row = get_rule(session, name)
    if row.origin == RuleOrigin.CONFIG:
        raise _from_config(name)
    session.delete(row)


def _from_config(name: str) -> FailedPrecondition:
    # The file would bring it back (or undo the change) at the next start.
    return FailedPrecondition(
        f"replication rule {name!r} comes from the serve configuration file: change it there"
    )


def prune_config_rules(session: Session, keep: Iterable[str]) -> list[str]:
    """Delete rules that came from the config file and are no longer in it."""
    gone = session.scalars(
        select(ReplicationRule.name).where(
            ReplicationRule.origin == RuleOrigin.CONFIG, ReplicationRule.name.not_in(list(keep))
        )
    ).all()
    if gone:
        session.execute(delete(ReplicationRule).where(ReplicationRule.name.in_(gone)))
    return list(gone)


# -- runs --------------------------------------------------------------------------------------


def create_run(
    session: Session, rule: ReplicationRule, trigger: Trigger, scheduled_for: datetime | None = None
) -> ReplicationRun | None:
    """A new pending run of the rule as it is now; None when the run for this (rule, scheduled
    time) exists already."""
    run = Run(
        rule_id=rule.id,
        trigger=trigger,
        scheduled_for=scheduled_for,
        spec=rule.spec,
        status=RunStatus.PENDING,
    )
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return None
    announce(session)  # a run to plan
    return run


def has_open_run(
    session: Session,
    rule_id: int,
    statuses: Sequence[RunStatus] = (RunStatus.PENDING, RunStatus.PLANNING),
) -> bool:
    """A run in one of ``statuses``; by default one that has not listed the source yet, which
    a new trigger would only repeat."""
    found = session.scalar(select(exists().where(Run.rule_id == rule_id, Run.status.in_(statuses))))
    return found is True


def get_run(session: Session, run_id: int) -> ReplicationRun:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"replication run {run_id} does not exist")
    return run


def claim_run(
    session: Session, owner: str, lease: float, run_id: int | None = None
) -> ReplicationRun | None:
    """Claim a run to plan: a pending one, or one whose planner's lease ran out."""
    now = utcnow()
    claimable = select(Run.id).where(
        or_(
            Run.status == RunStatus.PENDING,
            and_(Run.status == RunStatus.PLANNING, Run.lease_until < now),
        )
    )
    if run_id is not None:
        claimable = claimable.where(Run.id == run_id)
    claimed = session.scalar(
        update(Run)
        .where(_unheld(Run, claimable.order_by(Run.id).limit(1)))
        .values(
            status=RunStatus.PLANNING,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease),
            started_at=func.coalesce(Run.started_at, now),
        )
        .returning(Run.id)
    )
    return session.get(Run, claimed) if claimed is not None else None


@dataclass(frozen=True, slots=True)
class PlannedTask:
    source_repository: str
    destination_repository: str
    tag: str  # empty: the repository could not be listed; ``reason`` says why
    reason: str | None = None


def save_plan(session: Session, run_id: int, owner: str, tasks: Sequence[PlannedTask]) -> bool:
    """Insert the run's tasks and start it, if ``owner`` still holds the planning lease."""
    started = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.PLANNING, Run.lease_owner == owner)
        .values(status=RunStatus.RUNNING, lease_owner=None, lease_until=None)
    )
    if started.rowcount != 1:  # type: ignore[attr-defined]
        return False
    now = utcnow()
    if tasks:
        session.execute(
            Task.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "run_id": run_id,
                    "source_repository": t.source_repository,
                    "destination_repository": t.destination_repository,
                    "tag": t.tag,
                    "status": TaskStatus.FAILED if t.reason else TaskStatus.PENDING,
                    "reason": t.reason,
                    "attempts": 0,
                    "finished_at": now if t.reason else None,
                    **dict.fromkeys(TASK_COUNTERS, 0),
                }
                for t in tasks
            ],
        )
        announce(session)  # tasks to claim
    return True


def fail_run(session: Session, run_id: int, owner: str, error: str) -> None:
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.PLANNING, Run.lease_owner == owner)
        .values(status=RunStatus.FAILED, error=error, finished_at=utcnow(), lease_owner=None)
    )


def finish_runs(session: Session, run_ids: Iterable[int] | None = None) -> list[int]:
    """Close running runs with no open task left; → the ids closed."""
    open_task = exists().where(Task.run_id == Run.id, Task.status.in_(OPEN_TASK))
    failed_task = exists().where(Task.run_id == Run.id, Task.status.in_(FAILED_TASK))
    where = [Run.status == RunStatus.RUNNING, ~open_task]
    if run_ids is not None:
        where.append(Run.id.in_(list(run_ids)))
    closing = update(Run).where(*where)
    status = case((failed_task, RunStatus.FAILED), else_=RunStatus.SUCCEEDED)
    closed = session.scalars(
        closing.values(status=status, finished_at=utcnow()).returning(Run.id)
    ).all()
    return list(closed)


# -- tasks -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    id: int
    run_id: int
    source_repository: str
    destination_repository: str
    tag: str
    attempts: int


def claim_tasks(
    session: Session, owner: str, count: int, lease: float, run_id: int | None = None
) -> list[ClaimedTask]:
    """Claim up to ``count`` tasks: pending ones, or running ones whose lease ran out. A task
    whose workers died ``MAX_ATTEMPTS`` times fails instead: it may be what kills them."""
    now = utcnow()
    claimable = (
        select(Task.id)
        .join(Run, Run.id == Task.run_id)
        .where(
            Run.status == RunStatus.RUNNING,
            or_(
                Task.status == TaskStatus.PENDING,
                and_(Task.status == TaskStatus.RUNNING, Task.lease_until < now),
            ),
        )
    )
    if run_id is not None:
        claimable = claimable.where(Task.run_id == run_id)
    session.execute(
        update(Task)
        .where(_unheld(Task, claimable.where(Task.attempts >= MAX_ATTEMPTS)))
        .values(
            status=TaskStatus.FAILED,
            reason=f"gave up after {MAX_ATTEMPTS} attempts: every worker that took it stopped "
            "before it finished",
            finished_at=now,
            lease_until=None,
        )
    )
    claimable = claimable.where(Task.attempts < MAX_ATTEMPTS).order_by(Task.id).limit(count)
    rows = session.execute(
        update(Task)
        .where(_unheld(Task, claimable))
        .values(
            status=TaskStatus.RUNNING,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease),
            attempts=Task.attempts + 1,
            started_at=now,
        )
        .returning(
            Task.id,
            Task.run_id,
            Task.source_repository,
            Task.destination_repository,
            Task.tag,
            Task.attempts,
        )
    ).all()
    return sorted((ClaimedTask(*row) for row in rows), key=lambda t: t.id)


def renew_leases(session: Session, owner: str, task_ids: Iterable[int], lease: float) -> set[int]:
    """Extend ``owner``'s leases; → the ids still held (the others passed to another worker)."""
    ids = list(task_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            update(Task)
            .where(Task.id.in_(ids), Task.lease_owner == owner, Task.status == TaskStatus.RUNNING)
            .values(lease_until=utcnow() + timedelta(seconds=lease))
            .returning(Task.id)
        ).all()
    )


def renew_run_leases(session: Session, owner: str, run_ids: Iterable[int], lease: float) -> None:
    ids = list(run_ids)
    if ids:
        session.execute(
            update(Run)
            .where(Run.id.in_(ids), Run.lease_owner == owner, Run.status == RunStatus.PLANNING)
            .values(lease_until=utcnow() + timedelta(seconds=lease))
        )


def release_tasks(session: Session, owner: str, task_ids: Iterable[int]) -> None:
    """Hand unfinished tasks back at once (a worker stopping), rather than at lease expiry;
    a handed-back claim does not count as an attempt."""
    released = session.execute(
        update(Task)
        .where(
            Task.id.in_(list(task_ids)),
            Task.lease_owner == owner,
            Task.status == TaskStatus.RUNNING,
        )
        .values(
            status=TaskStatus.PENDING,
            lease_owner=None,
            lease_until=None,
            attempts=Task.attempts - 1,
        )
    )
    if released.rowcount:  # type: ignore[attr-defined]
        announce(session)  # for the replicas that stay


def finish_task(
    session: Session,
    task_id: int,
    owner: str,
    status: TaskStatus,
    *,
    reason: str | None,
    digest: str | None,
    counters: dict[str, int],
) -> bool:
    """Record a task's outcome; False when its lease had passed to another worker."""
    result = session.execute(
        update(Task)
        .where(Task.id == task_id, Task.lease_owner == owner, Task.status == TaskStatus.RUNNING)
        .values(
            status=status,
            reason=reason,
            digest=digest,
            finished_at=utcnow(),
            lease_until=None,  # the owner stays: who copied it
            **counters,
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# -- what runs did -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunTotals:
    outcomes: dict[str, int]  # task status → count
    counters: dict[str, int]  # TASK_COUNTERS summed

    @property
    def tasks(self) -> int:
        return sum(self.outcomes.values())

    @property
    def done(self) -> int:
        return sum(n for s, n in self.outcomes.items() if s not in OPEN_TASK)


def run_totals(session: Session, run_ids: Sequence[int]) -> dict[int, RunTotals]:
    columns = [func.coalesce(func.sum(getattr(Task, c)), 0) for c in TASK_COUNTERS]
    rows = session.execute(
        select(Task.run_id, Task.status, func.count(), *columns)
        .where(Task.run_id.in_(list(run_ids)))
        .group_by(Task.run_id, Task.status)
    ).all()
    totals = {run_id: RunTotals({}, dict.fromkeys(TASK_COUNTERS, 0)) for run_id in run_ids}
    for run_id, status, count, *sums in rows:
        total = totals[run_id]
        total.outcomes[status] = int(count)
        for name, value in zip(TASK_COUNTERS, sums, strict=True):
            total.counters[name] += int(value)
    return totals


def failed_tasks(session: Session, run_id: int, limit: int) -> Sequence[ReplicationTask]:
    return session.scalars(
        select(Task)
        .where(Task.run_id == run_id, Task.status.in_(UNCOPIED_TASK))
        .order_by(Task.id)
        .limit(limit)
    ).all()


def list_runs(
    session: Session, rule_id: int | None, size: int, after: int | None
) -> Sequence[ReplicationRun]:
    """Newest first; ``after`` is the id the previous page ended with."""
    query = select(Run).order_by(Run.id.desc()).limit(size)
    if rule_id is not None:
        query = query.where(Run.rule_id == rule_id)
    if after is not None:
        query = query.where(Run.id < after)
    return session.scalars(query).all()


def latest_runs(
    session: Session, rule_ids: Sequence[int], statuses: Sequence[RunStatus] | None = None
) -> dict[int, ReplicationRun]:
    """Each rule's newest run, of one of ``statuses`` if given, by rule id (one query)."""
    newest = select(func.max(Run.id)).where(Run.rule_id.in_(list(rule_ids)))
    if statuses is not None:
        newest = newest.where(Run.status.in_(statuses))
    runs = session.scalars(select(Run).where(Run.id.in_(newest.group_by(Run.rule_id))))
    return {run.rule_id: run for run in runs}
