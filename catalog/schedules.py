"""Schedules: as users write them (``interval: 15m`` or ``cron: */15 * * * *``), as the store
keeps them (``interval:15m``, ``cron:*/15 * * * *``), and as APScheduler triggers.

Every replica must agree on when a schedule fires, so that they name a scheduled run alike:
cron fires on the clock, and intervals count from a fixed epoch rather than from start-up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, model_validator

from catalog.durations import SCHEDULE
from catalog.errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# Ten years: longer is a mistake (and past what a schedule's epoch arithmetic needs).
DURATION_MAX = 3660 * 86400


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``1h30m``, ``2d12h`` → seconds, from 1 s to ten years."""
    shown = repr(text) if len(text) <= 40 else f"of {len(text)} characters"
    found = SCHEDULE.seconds(text.strip())
    if found is None:
        raise ValueError(
            f"invalid duration {shown}: numbers with d, h, m, s, largest first (e.g. 15m, 1h30m)"
        )
    seconds = int(found)  # whole numbers of at most six digits: exact in a float
    if not 1 <= seconds <= DURATION_MAX:
        raise ValueError(f"invalid duration {shown}: between 1s and 3660d")
    return seconds


class IndexSchedule(BaseModel):
    """When a job fires: exactly one of an interval or a crontab line (UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: str | None = None
    cron: str | None = None

    @model_validator(mode="after")
    def one_of(self) -> IndexSchedule:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("give exactly one of 'interval' (e.g. 15m) or 'cron'")
        if self.interval is not None:
            parse_duration(self.interval)
        if self.cron is not None:
            cron_trigger(self.cron)
        return self

    def as_text(self) -> str:
        return f"interval:{self.interval}" if self.interval else f"cron:{self.cron}"


def cron_trigger(line: str) -> BaseTrigger:
    """A crontab line (minute hour day month weekday, UTC) as a trigger, meaning what crontab
    means: weekdays 0 and 7 are Sunday (APScheduler 3 counts from Monday, so they are handed over
    as names), and when both day and weekday are restricted, either one matching fires (APScheduler
    wants both). Raises ValueError for what it cannot read."""
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    fields = line.split()
    if len(fields) != 5:
        raise ValueError(f"cron {line!r}: give 5 fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    weekdays = _weekdays(weekday, line)

    def trigger(day: str, weekdays: str) -> BaseTrigger:
        try:
            return CronTrigger(
                minute=minute, hour=hour, day=day, month=month, day_of_week=weekdays, timezone=UTC
            )
        except ValueError as exc:
            raise ValueError(f"cron {line!r}: {exc}") from None

    if day not in ("*", "?") and weekdays != "*":
        return OrTrigger([trigger(day, "*"), trigger("*", weekdays)])
    return trigger(day, weekdays)


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekdays(field: str, line: str) -> str:
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            low, high = 0, 6
        else:
            first, _, last = span.partition("-")
            low = _day(first, line)
            high = _day(last, line) if last else (6 if step else low)
        if (step and (not step.isdigit() or int(step) == 0)) or high < low:
            raise ValueError(f"cron {line!r}: cannot read the weekday field {field!r}")
        days.update(d % 7 for d in range(low, high + 1, int(step or 1)))
    return ",".join(_DAYS[d] for d in sorted(days))


def _day(text: str, line: str) -> int:
    name = text.lower()
    if name.isdigit() and int(name) <= 7:
        return int(name)
    if name[:3] in _DAYS:
        return _DAYS.index(name[:3])
    raise ValueError(f"cron {line!r}: {text!r} is not a weekday (0-7 or sun-sat)")


def trigger_for(schedule: str) -> BaseTrigger:
    from apscheduler.triggers.interval import IntervalTrigger

    kind, _, value = schedule.partition(":")
    try:
        if kind == "interval":
            return IntervalTrigger(seconds=parse_duration(value), start_date=EPOCH, timezone=UTC)
        if kind == "cron":
            return cron_trigger(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError(f"unknown schedule {schedule!r}")


def latest_fire_time(trigger: BaseTrigger, now: datetime) -> datetime:
    """The newest time ``trigger`` fires at or before ``now``: what a job that fired late
    (a busy loop, a misfire) was scheduled for."""
    step = timedelta(minutes=1)
    while (earlier := trigger.get_next_fire_time(None, now - step)) is None or earlier > now:
        if step > timedelta(days=3660):
            raise ConfigError("the schedule has not fired in ten years")
        step *= 2
    latest: datetime = earlier
    while (following := trigger.get_next_fire_time(latest, latest)) is not None and (
        following <= now
    ):
        latest = following
    return latest
