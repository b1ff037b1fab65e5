"""Replication's records ↔ ``xregistry.v1`` replication messages, both ways.

Domain → protobuf for the servicer; protobuf → domain for the CLI's ``--server`` backend, so
commands print the same records whichever backend they talk to. The enum tables are here once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration

from catalog.api import enums, names
from catalog.api.convert import datetime_of, optional_datetime, timestamp
from catalog.api.v1 import replication_pb2 as pb
from catalog.errors import InvalidArgument
from replication.models import TASK_COUNTERS
from replication.service import Lag, RefusedRule, RuleView, RunView, TaskFailure
from replication.spec import RuleSpec, parse_spec
from replication.statuses import RunStatus, TaskStatus, Trigger

_OUTCOMES = frozenset(("copied", "skipped", "failed"))  # the fields of a pb.Tally


def _counter_field(counter: str) -> tuple[str, str | None]:
    """Where a run counter (:data:`TASK_COUNTERS`) is in a pb.Run: ``manifests_copied`` →
    (``manifests``, ``copied``), a Tally's field; ``blobs_mounted`` → (``blobs_mounted``, None),
    a field of the Run itself."""
    what, _, outcome = counter.rpartition("_")
    return (what, outcome) if outcome in _OUTCOMES else (counter, None)


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
        name=names.run_name(view.rule or None, view.id),
        rule=names.rule_name(view.rule) if view.rule else "",
        trigger=enums.TRIGGER.proto(view.trigger),
        scheduled_time=timestamp(view.scheduled_for),
        status=enums.RUN_STATUS.proto(view.status),
        error=view.error or "",
        create_time=timestamp(view.created_at),
        start_time=timestamp(view.started_at),
        finish_time=timestamp(view.finished_at),
        tasks_total=view.tasks_total,
        tasks_done=view.tasks_done,
        task_counts=[
            pb.TaskCount(status=enums.TASK_STATUS.proto(status), count=view.outcomes[status])
            for status in TaskStatus
            if status in view.outcomes
        ],
        failures=[
            pb.TaskFailure(
                repository=f.repository,
                tag=f.tag,
                status=enums.TASK_STATUS.proto(f.status),
                reason=f.reason,
            )
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
        name=names.rule_name(spec.name),
        source=names.registry_name(spec.source),
        destination=names.registry_name(spec.destination),
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
            newest_by=enums.NEWEST_BY.proto(tags.newest_by),
        ),
        referrers=spec.referrers,
        conflict=enums.CONFLICT.proto(spec.conflict),
        policy=names.policy_name(spec.policy) if spec.policy else "",
        schedule=pb.Schedule(**spec.schedule.model_dump(exclude_none=True))
        if spec.schedule is not None
        else None,
        on_index=spec.on_index,
    )


def rule_message(view: RuleView) -> pb.Rule:
    message = spec_message(view.spec)
    message.MergeFrom(
        pb.Rule(
            origin=enums.RULE_ORIGIN.proto(view.origin),
            create_time=timestamp(view.created_at),
            update_time=timestamp(view.updated_at),
            last_run=run_message(view.last_run) if view.last_run is not None else None,
            lag=lag_message(view.lag),
        )
    )
    return message


def listed_rule_message(view: RuleView | RefusedRule) -> pb.Rule:
    """A rule of a listing: a refused one by its name, origin, times and why."""
    if isinstance(view, RuleView):
        return rule_message(view)
    return pb.Rule(
        name=names.rule_name(view.name),
        origin=enums.RULE_ORIGIN.proto(view.origin),
        create_time=timestamp(view.created_at),
        update_time=timestamp(view.updated_at),
        refused=view.reason,
    )


# -- protobuf → domain -------------------------------------------------------------------------


def _registry(message: pb.Rule, field: str) -> str:
    value: str = getattr(message, field)
    if not value:
        raise InvalidArgument(f"rule.{field} is required: a registry's name, registries/{{id}}")
    return names.parse_registry_name(value)


def rule_spec(message: pb.Rule, rule_id: str | None = None) -> RuleSpec:
    """A request's rule as a validated spec, named ``rule_id`` or by its ``name``; problems →
    InvalidArgument (names, parse_spec)."""
    data: dict[str, Any] = {
        "name": rule_id if rule_id is not None else names.parse_rule_name(message.name),
        "source": _registry(message, "source"),
        "destination": _registry(message, "destination"),
        "exclude": list(message.exclude),
        "prefix": message.prefix,
        "strip": message.strip,
        "referrers": message.referrers or "all",
        "on_index": message.on_index,
    }
    if message.include:
        data["include"] = list(message.include)
    if message.conflict != pb.CONFLICT_POLICY_UNSPECIFIED:
        data["conflict"] = enums.CONFLICT.domain(message.conflict) or str(message.conflict)
    if message.policy:
        data["policy"] = names.parse_policy_name(message.policy)
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
            tags["newest_by"] = enums.NEWEST_BY.domain(t.newest_by) or str(t.newest_by)
        data["tags"] = tags
    if message.HasField("schedule"):
        which = message.schedule.WhichOneof("schedule")
        # An empty Schedule message fails validation: it names neither kind.
        data["schedule"] = {which: getattr(message.schedule, which)} if which else {}
    return parse_spec(data)


def _known(value: Any, what: str, number: int) -> Any:
    if value is None:
        raise InvalidArgument(f"the server sent {what} {number}, unknown to this client")
    return value


def run_view(message: pb.Run) -> RunView:
    counters: dict[str, int] = {}
    for counter in TASK_COUNTERS:
        name, outcome = _counter_field(counter)
        value = getattr(message, name)
        counters[counter] = int(value if outcome is None else getattr(value, outcome))
    rule, run = names.parse_run_name(message.name)
    status: RunStatus = _known(
        enums.RUN_STATUS.domain(message.status), "run status", message.status
    )
    trigger: Trigger = _known(enums.TRIGGER.domain(message.trigger), "trigger", message.trigger)
    return RunView(
        id=run,
        rule=rule or "",
        trigger=trigger,
        scheduled_for=optional_datetime(message, "scheduled_time"),
        status=status,
        error=message.error or None,
        created_at=datetime_of(message.create_time),
        started_at=optional_datetime(message, "start_time"),
        finished_at=optional_datetime(message, "finish_time"),
        tasks_total=message.tasks_total,
        tasks_done=message.tasks_done,
        outcomes={
            _task_status(c.status): int(c.count)
            for c in sorted(message.task_counts, key=lambda c: str(_task_status(c.status)))
        },
        counters=counters,
        failures=tuple(
            TaskFailure(f.repository, f.tag, _task_status(f.status), f.reason)
            for f in message.failures
        ),
    )


def _task_status(number: int) -> TaskStatus:
    status: TaskStatus = _known(enums.TASK_STATUS.domain(number), "task status", number)
    return status


def listed_rule_view(message: pb.Rule) -> RuleView | RefusedRule:
    """A rule of a listing; one the server cannot read is refused (its reason one line)."""
    if not message.refused:
        return rule_view(message)
    return RefusedRule(
        name=names.parse_rule_name(message.name),
        origin=_known(enums.RULE_ORIGIN.domain(message.origin), "rule origin", message.origin),
        created_at=datetime_of(message.create_time),
        updated_at=datetime_of(message.update_time),
        reason=" ".join(message.refused.split())[:_REASON],
    )


_REASON = 1000  # characters of a refused rule's reason shown (the server's text)


def rule_view(message: pb.Rule) -> RuleView:
    lag = message.lag
    return RuleView(
        spec=rule_spec(message),
        origin=_known(enums.RULE_ORIGIN.domain(message.origin), "rule origin", message.origin),
        created_at=datetime_of(message.create_time),
        updated_at=datetime_of(message.update_time),
        last_run=run_view(message.last_run) if message.HasField("last_run") else None,
        lag=Lag(
            synced_at=optional_datetime(lag, "synced_time"),
            pending_since=optional_datetime(lag, "pending_since_time"),
            pending_changes=lag.pending_changes,
            seconds=lag.behind.ToTimedelta().total_seconds(),
        ),
    )
