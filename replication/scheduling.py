"""When rules run on their own: APScheduler jobs for scheduled rules, kept in step with the store.

Rules change through any replica's API, so every replica re-reads them every ``refresh``
seconds. Each replica fires each schedule; the run is created once per (rule, scheduled time) —
the store's unique key — so replicas firing together do not repeat it.
"""

from __future__ import annotations

import asyncio
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from catalog.errors import ConfigError, InvalidArgument, NotFound
from catalog.moments import rfc3339
from catalog.schedules import latest_fire_time, trigger_for
from catalog.store.models import utcnow
from replication import store
from replication.service import ReplicationService
from replication.statuses import Trigger

log = logging.getLogger("xregistry.replication")
JOB_PREFIX = "replicate:"


class RuleScheduler:
    def __init__(
        self, scheduler: AsyncIOScheduler, service: ReplicationService, refresh: float = 10.0
    ) -> None:
        self.scheduler = scheduler
        self.service = service
        self.refresh = refresh
        self._schedules: dict[str, str] = {}  # job id → schedule text

    def start(self) -> None:
        self.sync()
        self.scheduler.add_job(
            self._resync,
            IntervalTrigger(seconds=self.refresh),
            id="replication-rules",
            max_instances=1,
            coalesce=True,
        )

    async def _resync(self) -> None:
        try:
            self.sync(await asyncio.to_thread(self._wanted))
        except Exception:
            log.exception("reloading replication rules failed")

    def _wanted(self) -> dict[str, str]:
        specs = []
        with self.service.sessions() as session:
            for row in store.list_rules(session):
                try:
                    specs.append(store.rule_spec(row))
                except InvalidArgument as exc:  # not scheduled; the others are
                    log.error("%s; it is not scheduled until it is replaced", exc)
        return {
            JOB_PREFIX + spec.name: spec.schedule_text
            for spec in specs
            if spec.schedule_text is not None
        }

    def sync(self, wanted: dict[str, str] | None = None) -> None:
        """Add, change and remove jobs to match the stored rules."""
        if wanted is None:
            wanted = self._wanted()
        for job_id, schedule in list(self._schedules.items()):
            if wanted.get(job_id) != schedule:
                self.scheduler.remove_job(job_id)
                del self._schedules[job_id]
        for job_id, schedule in wanted.items():
            if job_id in self._schedules:
                continue
            try:
                trigger = trigger_for(schedule)
            except ConfigError as exc:  # stored before this version could read it, say
                log.error("replication rule %s: schedule %r: %s", job_id, schedule, exc)
                continue
            self.scheduler.add_job(
                self.fire,
                trigger,
                args=[job_id.removeprefix(JOB_PREFIX), schedule],
                id=job_id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=60,
            )
            self._schedules[job_id] = schedule

    async def fire(self, rule: str, schedule: str) -> None:
        scheduled = latest_fire_time(trigger_for(schedule), utcnow())
        try:
            run = await asyncio.to_thread(
                self.service.trigger_run, rule, Trigger.SCHEDULE, scheduled
            )
        except NotFound:
            return  # deleted since the last sync; the next one drops the job
        except Exception:
            log.exception("starting the scheduled run of %s failed", rule)
            return
        if run is not None:
            log.info("replication rule %s: run %d for %s", rule, run.id, rfc3339(scheduled))
