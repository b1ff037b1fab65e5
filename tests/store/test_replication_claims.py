"""Runs and tasks shared by many workers: unique scheduled runs, atomic claims, leases."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import FailedPrecondition
from catalog.store.registries import RegistrySpec, create_registry
from replication import store
from replication.models import ReplicationRule, ReplicationRun
from replication.service import ReplicationService
from replication.spec import RuleSpec
from replication.statuses import TaskStatus, Trigger

WHEN = datetime(2026, 11, 27, 10, 15, tzinfo=UTC)


def _rule(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        for name in ("a", "b"):
            create_registry(session, RegistrySpec(name=name, host=f"{name}.test:5000"))
        spec = RuleSpec(name="mirror", source="a", destination="b")
        return store.put_rule(session, spec).id


def _create(
    session: Session, rule_id: int, trigger: Trigger, when: datetime | None = None
) -> ReplicationRun | None:
    rule = session.get(ReplicationRule, rule_id)
    assert rule is not None
    return store.create_run(session, rule, trigger, when)


def _running_run(sessions: sessionmaker[Session], rule_id: int, tags: int) -> int:
    with sessions.begin() as session:
        run = _create(session, rule_id, Trigger.MANUAL)
        assert run is not None
        run_id = run.id
    with sessions.begin() as session:
        claimed = store.claim_run(session, "planner", 30)
        assert claimed is not None
        assert claimed.id == run_id
        planned = [store.PlannedTask("acme/api", "m/acme/api", f"v{i}") for i in range(tags)]
        assert store.save_plan(session, run_id, "planner", planned)
    return run_id


def test_a_scheduled_run_is_created_once(sessions: sessionmaker[Session]) -> None:
    rule_id = _rule(sessions)
    with sessions.begin() as session:
        first = _create(session, rule_id, Trigger.SCHEDULE, WHEN)
        again = _create(session, rule_id, Trigger.SCHEDULE, WHEN)
        manual = [_create(session, rule_id, Trigger.MANUAL) for _ in range(2)]
    assert first is not None
    assert again is None
    assert all(run is not None for run in manual)  # manual runs are never merged


def test_concurrent_claimers_never_share_a_task(sessions: sessionmaker[Session]) -> None:
    run_id = _running_run(sessions, _rule(sessions), 120)
    claims: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(owner: str) -> None:
        while True:
            with sessions.begin() as session:
                got = store.claim_tasks(session, owner, 3, 30)
            if not got:
                return
            with lock:
                claims.update(task.id for task in got)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(claims) == 120
    assert set(claims.values()) == {1}
    with sessions() as session:
        assert store.run_totals(session, [run_id])[run_id].outcomes == {"running": 120}


def test_an_expired_lease_passes_the_task_on(sessions: sessionmaker[Session]) -> None:
    run_id = _running_run(sessions, _rule(sessions), 1)
    with sessions.begin() as session:
        (first,) = store.claim_tasks(session, "dead", 5, 0.2)
        assert store.claim_tasks(session, "other", 5, 30) == []  # leased: not claimable
    time.sleep(0.3)
    with sessions.begin() as session:
        (again,) = store.claim_tasks(session, "alive", 5, 30)
    assert again.id == first.id
    assert again.attempts == 2
    with sessions.begin() as session:
        late = store.finish_task(
            session, first.id, "dead", TaskStatus.COPIED, reason=None, digest=None, counters={}
        )
        done = store.finish_task(
            session,
            again.id,
            "alive",
            TaskStatus.COPIED,
            reason=None,
            digest="sha256:" + "a" * 64,
            counters={"blobs_copied": 3, "bytes_copied": 100},
        )
    assert (late, done) == (False, True)
    with sessions.begin() as session:
        assert store.finish_runs(session) == [run_id]
        totals = store.run_totals(session, [run_id])[run_id]
        assert store.get_run(session, run_id).status == "succeeded"
    assert totals.outcomes == {"copied": 1}
    assert totals.counters["blobs_copied"] == 3
    assert totals.counters["bytes_copied"] == 100


def test_a_run_with_a_failed_task_fails_and_released_tasks_are_claimable(
    sessions: sessionmaker[Session],
) -> None:
    run_id = _running_run(sessions, _rule(sessions), 2)
    with sessions.begin() as session:
        one, two = store.claim_tasks(session, "w", 5, 30)
        store.finish_task(
            session, one.id, "w", TaskStatus.FAILED, reason="boom", digest=None, counters={}
        )
        store.release_tasks(session, "w", [two.id])
        assert store.finish_runs(session) == []  # one task is open again
    with sessions.begin() as session:
        (back,) = store.claim_tasks(session, "v", 5, 30)
        assert back.id == two.id
        store.finish_task(
            session, two.id, "v", TaskStatus.SKIPPED, reason=None, digest=None, counters={}
        )
        assert store.finish_runs(session) == [run_id]
        assert store.get_run(session, run_id).status == "failed"
        failures = store.failed_tasks(session, run_id, 10)
    assert [(t.tag, t.reason) for t in failures] == [("v0", "boom")]


def test_a_dead_planner_is_replaced(sessions: sessionmaker[Session]) -> None:
    rule_id = _rule(sessions)
    with sessions.begin() as session:
        run = _create(session, rule_id, Trigger.MANUAL)
        assert run is not None
        run_id = run.id
    with sessions.begin() as session:
        assert store.claim_run(session, "dead", 0.2) is not None
        assert store.claim_run(session, "other", 30) is None
    time.sleep(0.3)
    with sessions.begin() as session:
        taken = store.claim_run(session, "alive", 30)
        assert taken is not None
        assert taken.id == run_id
        assert not store.save_plan(session, run_id, "dead", [])  # the lease is gone
        assert store.save_plan(session, run_id, "alive", [])
        assert store.finish_runs(session) == [run_id]  # nothing to copy: done at once


def test_a_task_that_keeps_killing_its_workers_fails(sessions: sessionmaker[Session]) -> None:
    run_id = _running_run(sessions, _rule(sessions), 1)
    for attempt in range(1, store.MAX_ATTEMPTS + 1):
        with sessions.begin() as session:
            (task,) = store.claim_tasks(session, f"w{attempt}", 5, 0.01)
            assert task.attempts == attempt
        time.sleep(0.02)  # the worker dies: its lease runs out
    with sessions.begin() as session:
        assert store.claim_tasks(session, "last", 5, 30) == []
        (failed,) = store.failed_tasks(session, run_id, 10)
        assert failed.reason is not None
        assert f"gave up after {store.MAX_ATTEMPTS} attempts" in failed.reason
        assert store.finish_runs(session) == [run_id]


def test_renewing_says_which_leases_are_still_held(sessions: sessionmaker[Session]) -> None:
    _running_run(sessions, _rule(sessions), 2)
    with sessions.begin() as session:
        mine, lost = store.claim_tasks(session, "w", 5, 0.01)
    time.sleep(0.02)
    with sessions.begin() as session:
        (taken,) = store.claim_tasks(session, "other", 1, 30)  # the first expired one
        assert taken.id == mine.id
        assert store.renew_leases(session, "w", [mine.id, lost.id], 30) == {lost.id}
        store.release_tasks(session, "w", [lost.id])  # handed back: not an attempt
    with sessions.begin() as session:
        (again,) = store.claim_tasks(session, "third", 5, 30)
    assert (again.id, again.attempts) == (lost.id, 1)


def test_config_rules_are_changed_in_the_file_only(sessions: sessionmaker[Session]) -> None:
    _rule(sessions)  # registries a and b, and an API rule "mirror"
    service = ReplicationService(sessions)
    spec = RuleSpec(name="from-file", source="a", destination="b", prefix="f")
    assert service.apply_config_rules([spec]) == []
    with pytest.raises(FailedPrecondition, match="serve configuration file"):
        service.put_rule(spec.model_copy(update={"prefix": "g"}))
    with pytest.raises(FailedPrecondition, match="serve configuration file"):
        service.delete_rule("from-file")
    assert service.get_rule("from-file").origin == "config"
    assert service.apply_config_rules([]) == ["from-file"]  # gone from the file: gone
    assert [view.name for view in service.list_rules()] == ["mirror"]
