"""The replication engine: rules, planning, digest-preserving copies with referrers, runs and
leased tasks in SQL, the worker, schedules and lag.

    report = await replicate(rule, parallel=8)                   # one copy, no store
    service = ReplicationService(sessions)                        # stored rules and runs
    worker = Worker(sessions, parallel=8, lease=60, poll=0.5, gate=...)  # any number of replicas
"""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from replication.engine import replicate
    from replication.report import RunReport
    from replication.scheduling import RuleScheduler
    from replication.service import (
        Lag,
        RefusedRule,
        ReplicationService,
        RuleView,
        RunView,
        TaskFailure,
    )
    from replication.spec import RuleSpec, parse_spec
    from replication.statuses import RuleOrigin, RunStatus, TaskStatus, Trigger
    from replication.worker import Worker

__all__ = [
    "Lag",
    "RefusedRule",
    "ReplicationService",
    "RuleOrigin",
    "RuleScheduler",
    "RuleSpec",
    "RuleView",
    "RunReport",
    "RunStatus",
    "RunView",
    "TaskFailure",
    "TaskStatus",
    "Trigger",
    "Worker",
    "parse_spec",
    "replicate",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "replicate": "engine",
        "RunReport": "report",
        "RuleScheduler": "scheduling",
        "Lag": "service",
        "RefusedRule": "service",
        "ReplicationService": "service",
        "RuleView": "service",
        "RunView": "service",
        "TaskFailure": "service",
        "RuleSpec": "spec",
        "parse_spec": "spec",
        "RuleOrigin": "statuses",
        "RunStatus": "statuses",
        "TaskStatus": "statuses",
        "Trigger": "statuses",
        "Worker": "worker",
    },
)
