"""Schedules fire on a grid every replica agrees on, and a late job knows its slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from catalog.errors import ConfigError
from catalog.schedules import latest_fire_time, trigger_for

NOW = datetime(2026, 11, 27, 10, 7, 30, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "latest"),
    [
        ("cron:*/15 * * * *", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        ("cron:0 3 * * 1", datetime(2026, 11, 23, 3, 0, tzinfo=UTC)),  # Monday, as in crontab
        ("cron:0 3 * * 0", datetime(2026, 11, 22, 3, 0, tzinfo=UTC)),  # Sunday
        ("cron:0 3 * * 7", datetime(2026, 11, 22, 3, 0, tzinfo=UTC)),  # Sunday too
        ("cron:0 3 * * mon-wed", datetime(2026, 11, 25, 3, 0, tzinfo=UTC)),
        ("cron:0 3 * * */2", datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),  # sun,tue,thu,sat
        ("cron:0 3 * * 5-7", datetime(2026, 11, 27, 3, 0, tzinfo=UTC)),  # fri-sun
        # day and weekday both given: either fires, as in crontab (the 1st, or any Monday)
        ("cron:0 3 1 * 1", datetime(2026, 11, 23, 3, 0, tzinfo=UTC)),
        ("cron:0 3 26 * 1", datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),
        ("interval:5s", datetime(2026, 11, 27, 10, 7, 30, tzinfo=UTC)),
        ("interval:7m", datetime(2026, 11, 27, 10, 7, tzinfo=UTC)),  # counted from 2000-01-01
        ("interval:1d", datetime(2026, 11, 27, tzinfo=UTC)),
    ],
)
def test_latest_fire_time(schedule: str, latest: datetime) -> None:
    assert latest_fire_time(trigger_for(schedule), NOW) == latest


def test_replicas_started_apart_share_the_interval_grid() -> None:
    # Two triggers made at different moments name the same fire times.
    first, second = trigger_for("interval:90s"), trigger_for("interval:90s")
    later = NOW + timedelta(seconds=41)
    assert first.get_next_fire_time(None, NOW) == second.get_next_fire_time(None, NOW)
    assert latest_fire_time(first, later) == latest_fire_time(second, later)


def test_a_job_fired_late_keeps_its_slot() -> None:
    trigger = trigger_for("cron:*/15 * * * *")
    slot = datetime(2026, 11, 27, 10, 15, tzinfo=UTC)
    assert latest_fire_time(trigger, slot) == slot
    assert latest_fire_time(trigger, slot + timedelta(minutes=14, seconds=59)) == slot


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("hourly:1", "unknown schedule"),
        ("cron:* * * *", "give 5 fields"),
        ("cron:0 3 * * 8", "not a weekday"),
        ("cron:0 3 * * 5-1", "cannot read the weekday"),
        ("cron:0 3 * * */0", "cannot read the weekday"),
        ("cron:61 * * * *", "cron '61 .*higher than the maximum"),
        ("interval:soon", "invalid duration"),
    ],
)
def test_bad_schedules(schedule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        trigger_for(schedule)
