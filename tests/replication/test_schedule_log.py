"""A scheduled run's log line gives its time as RFC 3339 with ``Z``, as every user-facing time."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from catalog.schedules import IndexSchedule
from replication.scheduling import RuleScheduler
from replication.service import ReplicationService
from replication.spec import RuleSpec
from tests.replication.test_worker import catalog


async def test_a_scheduled_run_logs_its_time_with_z(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = ReplicationService(catalog(tmp_path, "127.0.0.1:1", "127.0.0.1:2"))
    schedule = IndexSchedule(interval="1h")
    service.put_rule(
        RuleSpec(name="m", source="src", destination="dst", prefix="m", schedule=schedule)
    )
    with caplog.at_level(logging.INFO, logger="xregistry.replication"):
        await RuleScheduler(AsyncIOScheduler(), service).fire("m", schedule.as_text())
    [line] = [r.getMessage() for r in caplog.records if "run 1 for" in r.getMessage()]
    assert re.search(r"run 1 for \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", line), line
