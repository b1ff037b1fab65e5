"""Tag globs are RE2 globs (catalog.oci.globs) as the README says: ``*`` and ``?``, no
``[...]`` classes; refused when a rule is added, and a stored one is refused by name on load."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from click.testing import CliRunner
from sqlalchemy import select

from catalog.cli.main import main
from catalog.errors import InvalidArgument
from catalog.schedules import IndexSchedule
from replication.models import ReplicationRule
from replication.rules import TagFilter
from replication.scheduling import RuleScheduler
from replication.service import ReplicationService
from replication.spec import RuleSpec, TagSpec
from tests.replication.test_worker import catalog


def test_tag_globs_match_as_the_projects_globs() -> None:
    tags = TagFilter(globs=("v1.*", "release-?"))
    assert [t for t in ("v1.2", "v1.", "v2.0", "release-a", "release-ab") if tags.admits(t)] == [
        "v1.2",
        "v1.",
        "release-a",
    ]
    for glob in ("v[0-9]*", "v]", "[!a]*"):
        with pytest.raises(InvalidArgument, match=r"no \[\.\.\.\] classes"):
            TagFilter(globs=(glob,))


def test_rule_add_refuses_a_class_in_one_line(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        main,
        ["--database", f"sqlite:///{tmp_path / 'c.db'}", "replicate", "rule", "add", "m",
         "--from", "src/**", "--to", "dst/m", "--tags", "v[0-9]*"],
        prog_name="xregistry",
    )  # fmt: skip
    assert done.exit_code == 2, (done.output, done.exception)
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("xregistry: error: ")
    assert "tag glob 'v[0-9]*': globs have * and ?, no [...] classes" in done.stderr


async def test_a_stored_rule_with_a_class_is_refused_by_name_and_the_others_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule stored before the check: the scheduler schedules the others and says which one
    it skipped, in one line; reading that rule names it."""
    sessions = catalog(tmp_path, "127.0.0.1:1", "127.0.0.1:2")
    service = ReplicationService(sessions)
    hourly = IndexSchedule(interval="1h")
    for name in ("bad", "good"):
        service.put_rule(
            RuleSpec(name=name, source="src", destination="dst", prefix=name, schedule=hourly,
                     tags=TagSpec(globs=["v*"]))
        )  # fmt: skip
    with sessions.begin() as session:
        row = session.scalars(select(ReplicationRule).where(ReplicationRule.name == "bad")).one()
        row.spec = {**row.spec, "tags": {**row.spec["tags"], "globs": ["v[0-9]*"]}}
    scheduler = RuleScheduler(AsyncIOScheduler(), service)
    with caplog.at_level(logging.ERROR, logger="xregistry.replication"):
        assert scheduler._wanted() == {"replicate:good": "interval:1h"}
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("stored rule 'bad': replication rule: ")
    assert "no [...] classes" in line
    assert "\n" not in line
    with pytest.raises(InvalidArgument, match=r"^stored rule 'bad': "):
        service.get_rule("bad")
    assert service.get_rule("good").spec.tags.globs == ["v*"]


def test_the_lag_metrics_skip_a_stored_rule_this_version_refuses(tmp_path: Path) -> None:
    """The other rules' lag is still exported (the old code failed the whole refresh)."""
    from catalog.daemon.observability import rule_lag

    sessions = catalog(tmp_path, "127.0.0.1:1", "127.0.0.1:2")
    service = ReplicationService(sessions)
    for name in ("bad", "good"):
        service.put_rule(RuleSpec(name=name, source="src", destination="dst", prefix=name))
    with sessions.begin() as session:
        row = session.scalars(select(ReplicationRule).where(ReplicationRule.name == "bad")).one()
        row.spec = {**row.spec, "tags": {**row.spec["tags"], "globs": ["v[0-9]*"]}}
    assert list(rule_lag(service)) == ["good"]
