"""Replication's records ↔ ``xregistry.v1`` replication messages, both ways.

Domain → protobuf for the servicer; protobuf → domain for the CLI's ``--server`` backend, so
commands print the same records whichever backend they talk to. The enum tables are here once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from catalog.api.convert import timestamp
from catalog.api.v1 import replication_pb2 as pb
from replication.models import TASK_COUNTERS
from replication.service import Lag, RuleView, RunView, TaskFailure
from replication.spec import RuleSpec, parse_spec

RUN_STATUSES = {
    "pending": pb.RUN_STATUS_PENDING,
    "planning": pb.RUN_STATUS_PLANNING,
    "running": pb.RUN_STATUS_RUNNING,
    "succeeded": pb.RUN_STATUS_SUCCEEDED,
    "failed": pb.RUN_STATUS_FAILED,
}
TRIGGERS = {
    "manual": pb.RUN_TRIGGER_MANUAL,
    "schedule": pb.RUN_TRIGGER_SCHEDULE,
    "index": pb.RUN_TRIGGER_INDEX,
}
CONFLICTS = {"overwrite": pb.CONFLICT_POLICY_OVERWRITE, "report": pb.CONFLICT_POLICY_REPORT}
NEWEST_BY = {"tag": pb.NEWEST_BY_TAG, "created": pb.NEWEST_BY_CREATED}
_OUTCOMES = frozenset(("copied", "skipped", "failed"))  # the fields of a pb.Tally


def _names(table: dict[str, Any]) -> dict[Any, str]:
    return {v: k for k, v in table.items()}


def _counter_field(counter: str) -> tuple[str, str | None]:
    """Where a run counter (:data:`TASK_COUNTERS`) is in a pb.Run: ``manifests_copied`` →
    (``manifests``, ``copied``), a Tally's field; ``blobs_mounted`` → (``blobs_mounted``, None),
    a field of the Run itself."""
    what, _, outcome = counter.rpartition("_")
    return (what, outcome) if outcome in _OUTCOMES else (counter, None)


_STATUS_NAMES = _names(RUN_STATUSES)
_TRIGGER_NAMES = _names(TRIGGERS)
_CONFLICT_NAMES = _names(CONFLICTS)
_NEWEST_BY_NAMES = _names(NEWEST_BY)


# -- domain → protobuf -------------------------------------------------------------------------


def _duration(seconds: float) -> Duration:
    value = Duration()
    value.FromTimedelta(timedelta(seconds=seconds))
    return value


def lag_message(lag: Lag) -> pb.Lag:
    return pb.Lag(
        synced_time=timestamp(lag.synced_at),
        pending_since_time=timestamp(lag.pending_since),
        pending_changes=lag.pending_changes,
        behind=_duration(lag.seconds),
        in_sync=lag.in_sync,
    )


def run_message(view: RunView) -> pb.Run:
    message = pb.Run(
        id=view.id,
        rule=view.rule,
        trigger=TRIGGERS.get(view.trigger, pb.RUN_TRIGGER_UNSPECIFIED),
        scheduled_time=timestamp(view.scheduled_for),
        status=RUN_STATUSES.get(view.status, pb.RUN_STATUS_UNSPECIFIED),
        error=view.error or "",
        create_time=timestamp(view.created_at),
        start_time=timestamp(view.started_at),
        finish_time=timestamp(view.finished_at),
        tasks_total=view.tasks_total,
        tasks_done=view.tasks_done,
        outcomes=view.outcomes,
        failures=[
            pb.TaskFailure(repository=f.repository, tag=f.tag, status=f.status, reason=f.reason)
            for f in view.failures
        ],
    )
    for counter in TASK_COUNTERS:
        name, outcome = _counter_field(counter)
        value = view.counters.get(counter, 0)
        if outcome is None:
            setattr(message, name, value)
        else:
            setattr(getattr(message, name), outcome, value)
    return message


def spec_message(spec: RuleSpec) -> pb.Rule:
    """The fields a client writes; :func:`rule_message` adds the output-only ones."""
    tags = spec.tags
    return pb.Rule(
        name=spec.name,
        source=spec.source,
        destination=spec.destination,
        include=spec.include,
        exclude=spec.exclude,
        prefix=spec.prefix,
        strip=spec.strip,
        rename=pb.Rename(pattern=spec.rename.pattern, replacement=spec.rename.replacement)
        if spec.rename is not None
        else None,
        tags=pb.TagFilter(
            globs=tags.globs,
            regex=tags.regex or "",
            semver=tags.semver or "",
            newest=tags.newest or 0,
            newest_by=NEWEST_BY[tags.newest_by],
        ),
        referrers=spec.referrers,
        conflict=CONFLICTS[spec.conflict],
        policy=spec.policy or "",
        schedule=pb.Schedule(**spec.schedule.model_dump(exclude_none=True))
        if spec.schedule is not None
        else None,
        on_index=spec.on_index,
    )


def rule_message(view: RuleView) -> pb.Rule:
    message = spec_message(view.spec)
    message.MergeFrom(
        pb.Rule(
            origin=view.origin,
            create_time=timestamp(view.created_at),
            update_time=timestamp(view.updated_at),
            last_run=run_message(view.last_run) if view.last_run is not None else None,
            lag=lag_message(view.lag),
        )
    )
    return message


# -- protobuf → domain -------------------------------------------------------------------------


def rule_spec(message: pb.Rule) -> RuleSpec:
    """A request's rule as a validated spec; problems → InvalidArgument (parse_spec)."""
    data: dict[str, Any] = {
        "name": message.name,
        "source": message.source,
        "destination": message.destination,
        "exclude": list(message.exclude),
        "prefix": message.prefix,
        "strip": message.strip,
        "referrers": message.referrers or "all",
        "on_index": message.on_index,
    }
    if message.include:
        data["include"] = list(message.include)
    if message.conflict != pb.CONFLICT_POLICY_UNSPECIFIED:
        data["conflict"] = _CONFLICT_NAMES.get(message.conflict, str(message.conflict))
    if message.policy:
        data["policy"] = message.policy
    if message.HasField("rename"):
        data["rename"] = {
            "pattern": message.rename.pattern,
            "replacement": message.rename.replacement,
        }
    if message.HasField("tags"):
        t = message.tags
        tags: dict[str, Any] = {"globs": list(t.globs)}
        if t.regex:
            tags["regex"] = t.regex
        if t.semver:
            tags["semver"] = t.semver
        if t.newest:
            tags["newest"] = t.newest
        if t.newest_by != pb.NEWEST_BY_UNSPECIFIED:
            tags["newest_by"] = _NEWEST_BY_NAMES.get(t.newest_by, str(t.newest_by))
        data["tags"] = tags
    if message.HasField("schedule"):
        which = message.schedule.WhichOneof("schedule")
        # An empty Schedule message fails validation: it names neither kind.
        data["schedule"] = {which: getattr(message.schedule, which)} if which else {}
    return parse_spec(data)


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _maybe_time(message: Any, field: str) -> datetime | None:
    return _time(getattr(message, field)) if message.HasField(field) else None


def run_view(message: pb.Run) -> RunView:
    counters: dict[str, int] = {}
    for counter in TASK_COUNTERS:
        name, outcome = _counter_field(counter)
        value = getattr(message, name)
        counters[counter] = int(value if outcome is None else getattr(value, outcome))
    return RunView(
        id=message.id,
        rule=message.rule,
        trigger=_TRIGGER_NAMES.get(message.trigger, "unknown"),
        scheduled_for=_maybe_time(message, "scheduled_time"),
        status=_STATUS_NAMES.get(message.status, "unknown"),
        error=message.error or None,
        created_at=_time(message.create_time),
        started_at=_maybe_time(message, "start_time"),
        finished_at=_maybe_time(message, "finish_time"),
        tasks_total=message.tasks_total,
        tasks_done=message.tasks_done,
        outcomes=dict(sorted(message.outcomes.items())),
        counters=counters,
        failures=tuple(
            TaskFailure(f.repository, f.tag, f.status, f.reason) for f in message.failures
        ),
    )


def rule_view(message: pb.Rule) -> RuleView:
    lag = message.lag
    return RuleView(
        spec=rule_spec(message),
        origin=message.origin,
        created_at=_time(message.create_time),
        updated_at=_time(message.update_time),
        last_run=run_view(message.last_run) if message.HasField("last_run") else None,
        lag=Lag(
            synced_at=_maybe_time(lag, "synced_time"),
            pending_since=_maybe_time(lag, "pending_since_time"),
            pending_changes=lag.pending_changes,
            seconds=lag.behind.ToTimedelta().total_seconds(),
        ),
    )
