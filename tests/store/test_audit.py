"""Who changed what: each change through the domain services leaves one audit event with the
principal acting (the API sets it per call; here ``acting_as`` does), its kind, resource and
versions; a change that fails leaves none; gate decisions record who asked, when they asked.
On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.app.audit_service import AuditService
from catalog.app.catalog_service import CatalogService, apply_config_registries
from catalog.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from catalog.gate.decision_log import DecisionLog
from catalog.principals import LOCAL, SERVER, Principal, PrincipalKind, acting_as
from catalog.store.audit import AuditEventView, AuditFilter, AuditKind
from catalog.store.models import AuditEvent, DecisionRecord
from catalog.store.registries import RegistrySpec
from catalog.trust.policy.facts import Decision
from catalog.trust.policy.stored import Policies
from replication.service import ReplicationService
from replication.spec import RuleSpec
from replication.statuses import Trigger
from tests.harness.registry import RunningRegistry
from tests.signing import key_policy

CI = Principal(PrincipalKind.TOKEN, "ci")
ALICE = Principal(PrincipalKind.OIDC, "alice", ("admins",))


def events(sessions: sessionmaker[Session], **where: object) -> list[AuditEventView]:
    """Every event matching ``where``, newest first."""
    return AuditService(sessions).list_events(AuditFilter(**where), 1000).items  # type: ignore[arg-type]


def one_event(sessions: sessionmaker[Session]) -> AuditEventView:
    (event,) = events(sessions)
    return event


def clear(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.query(AuditEvent).delete()


def policy() -> str:
    return key_policy("registry.test", ec.generate_private_key(ec.SECP256R1()))


def test_registries_created_and_deleted_are_recorded_with_the_caller(
    sessions: sessionmaker[Session],
) -> None:
    catalog = CatalogService(sessions)
    with acting_as(CI):
        catalog.add_registry(RegistrySpec("hub", "hub.test:5000"))
    created = one_event(sessions)
    assert (created.principal, created.kind, created.resource) == (
        "token:ci",
        AuditKind.REGISTRY_CREATED,
        "registries/hub",
    )
    assert created.before is None
    assert created.after is not None
    assert created.after.startswith("sha256:")
    assert abs(created.occurred_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert created.occurred_at.tzinfo is not None

    with acting_as(ALICE):
        catalog.remove_registry("hub")
    deleted = events(sessions)[0]
    assert (deleted.principal, deleted.kind, deleted.resource) == (
        "oidc:alice",
        AuditKind.REGISTRY_DELETED,
        "registries/hub",
    )
    assert (deleted.before, deleted.after) == (created.after, None)


def test_without_an_edge_the_local_user_is_recorded(sessions: sessionmaker[Session]) -> None:
    """The CLI on the database directly: nobody set a principal, the local user acted."""
    CatalogService(sessions).add_registry(RegistrySpec("hub", "hub.test:5000"))
    assert one_event(sessions).principal == str(LOCAL)
    assert str(LOCAL).startswith("local:")


async def test_index_runs_started_are_recorded(
    sessions: sessionmaker[Session], fresh_registry: RunningRegistry
) -> None:
    """Who made the server crawl a registry (and so send it the registry's credentials)."""
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("hub", fresh_registry.host))
    clear(sessions)
    with acting_as(CI):
        await catalog.index("hub")
    started = one_event(sessions)
    assert (started.principal, started.kind, started.resource) == (
        "token:ci",
        AuditKind.INDEX_STARTED,
        "registries/hub",
    )
    assert (started.before, started.after) == (None, "running")  # never indexed before
    with acting_as(ALICE):
        await catalog.index("hub")
    assert (events(sessions)[0].principal, events(sessions)[0].before) == (
        "oidc:alice",
        "succeeded",
    )
    with pytest.raises(NotFound):
        await catalog.index("nothing")
    assert len(events(sessions)) == 2


def test_a_principal_too_long_for_the_column_is_cut_not_refused(
    sessions: sessionmaker[Session],
) -> None:
    """PostgreSQL refuses a value longer than the column: the change (or a batch of decisions)
    must not fail because of who made it."""
    subject = Principal(PrincipalKind.CERTIFICATE, "CN=" + "x" * 2000)
    with acting_as(subject):
        CatalogService(sessions).add_registry(RegistrySpec("hub", "hub.test:5000"))
        DecisionLog(sessions).add("hub.test:5000/a:1", _decision("sha256:" + "a" * 64), "t", False)
    recorded = one_event(sessions).principal
    assert len(recorded) == 512
    assert recorded.startswith("cert:CN=xxx")
    assert recorded.endswith("…")
    with sessions() as session:
        assert session.scalar(select(DecisionRecord.principal)) == recorded


def test_failed_changes_leave_no_event(sessions: sessionmaker[Session]) -> None:
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("hub", "hub.test:5000"))
    clear(sessions)
    with acting_as(CI):
        with pytest.raises(AlreadyExists):
            catalog.add_registry(RegistrySpec("hub", "other.test:5000"))
        with pytest.raises(InvalidArgument):
            catalog.add_registry(RegistrySpec("Bad_Name", "hub.test:5000"))
        with pytest.raises(NotFound):
            catalog.remove_registry("nothing")
        with pytest.raises(InvalidArgument):
            Policies(sessions, set()).apply("default", "policies: [not a policy")
        replication = ReplicationService(sessions)
        with pytest.raises(NotFound):  # its registries are unknown
            replication.put_rule(RuleSpec(name="m", source="hub", destination="nowhere"))
        with pytest.raises(NotFound):
            replication.delete_rule("m")
        with pytest.raises(NotFound):
            replication.start_run("m")
    assert events(sessions) == []


def test_an_event_rolls_back_with_its_change(sessions: sessionmaker[Session]) -> None:
    """Recorded in the change's transaction: when the transaction fails after the event was
    written, neither the change nor its event stays."""
    catalog = CatalogService(sessions)
    written: list[str] = []

    def change_then_fail() -> None:
        with sessions.begin() as session:
            apply_config_registries(session, [RegistrySpec("hub", "hub.test:5000")])
            written.extend(session.scalars(select(AuditEvent.kind)))
            raise AlreadyExists("something after it failed")

    with pytest.raises(AlreadyExists):
        change_then_fail()
    assert written == [AuditKind.REGISTRY_CREATED]
    assert events(sessions) == []
    assert catalog.list_registries().items == []


def test_policy_versions_before_and_after(sessions: sessionmaker[Session]) -> None:
    policies = Policies(sessions, set())
    first, second = policy(), policy()
    with acting_as(CI):
        policies.apply("default", first)
        policies.apply("default", first)  # the same content: no new version, no event
    with acting_as(ALICE):
        view, created = policies.apply("default", second)
    assert created
    newest, oldest = events(sessions, kind=AuditKind.POLICY_APPLIED)
    assert (oldest.principal, oldest.resource, oldest.before, oldest.after) == (
        "token:ci",
        "policies/default",
        None,
        "1",
    )
    assert (newest.principal, newest.before, newest.after, newest.detail) == (
        "oidc:alice",
        "1",
        "2",
        view.digest,
    )


def test_rules_and_runs_are_recorded(sessions: sessionmaker[Session]) -> None:
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("src", "src.test:5000"))
    catalog.add_registry(RegistrySpec("dst", "dst.test:5000"))
    clear(sessions)
    replication = ReplicationService(sessions)
    with acting_as(CI):
        replication.put_rule(RuleSpec(name="m", source="src", destination="dst"))
        replication.put_rule(RuleSpec(name="m", source="src", destination="dst"))  # unchanged
        replication.put_rule(RuleSpec(name="m", source="src", destination="dst", prefix="p"))
    with acting_as(ALICE):
        scheduled = replication.trigger_run("m", Trigger.SCHEDULE, datetime.now(UTC))
    with acting_as(CI):
        run = replication.start_run("m")
    with acting_as(ALICE):
        replication.delete_rule("m")
    assert scheduled is not None
    found = [(e.principal, e.kind, e.resource) for e in reversed(events(sessions))]
    assert found == [
        ("token:ci", AuditKind.RULE_CREATED, "rules/m"),
        ("token:ci", AuditKind.RULE_UPDATED, "rules/m"),
        # A schedule firing is the server's doing, whoever's code path asked.
        ("server:xregistry", AuditKind.RUN_TRIGGERED, f"rules/m/runs/{scheduled.id}"),
        ("token:ci", AuditKind.RUN_TRIGGERED, f"rules/m/runs/{run.id}"),
        ("oidc:alice", AuditKind.RULE_DELETED, "rules/m"),
    ]
    created, updated, timed, manual, deleted = reversed(events(sessions))
    assert created.before is None
    assert created.after == updated.before
    assert updated.after != updated.before
    assert deleted.before == updated.after
    assert deleted.after is None
    assert (manual.after, manual.detail) == ("pending", "trigger: manual")
    assert timed.detail == "trigger: schedule"


def test_the_configuration_is_applied_as_the_server_and_only_changes_are_recorded(
    sessions: sessionmaker[Session],
) -> None:
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("dst", "dst.test:5000"))
    clear(sessions)
    replication = ReplicationService(sessions)
    hub = RegistrySpec("hub", "hub.test:5000")
    rule = RuleSpec(name="m", source="hub", destination="dst")
    for _ in range(2):  # a restart with the same file records nothing more
        with acting_as(SERVER):
            with sessions.begin() as session:
                apply_config_registries(session, [hub])
            replication.apply_config_rules([rule])
    moved = RegistrySpec("hub", "hub.test:5001")
    with acting_as(SERVER):
        with sessions.begin() as session:
            apply_config_registries(session, [moved])
        replication.apply_config_rules([])
    found = [(e.principal, e.kind, e.resource, e.detail) for e in reversed(events(sessions))]
    assert found == [
        ("server:xregistry", AuditKind.REGISTRY_CREATED, "registries/hub", "configuration"),
        ("server:xregistry", AuditKind.RULE_CREATED, "rules/m", "configuration"),
        ("server:xregistry", AuditKind.REGISTRY_UPDATED, "registries/hub", "configuration"),
        ("server:xregistry", AuditKind.RULE_DELETED, "rules/m", "configuration"),
    ]
    created, rule_created, updated, rule_deleted = reversed(events(sessions))
    assert updated.before == created.after != updated.after
    assert rule_deleted.before == rule_created.after
    # The config's rule refuses an API change, and that refusal records nothing.
    with acting_as(SERVER):
        replication.apply_config_rules([rule])
    clear(sessions)
    with acting_as(CI), pytest.raises(FailedPrecondition):
        replication.delete_rule("m")
    assert events(sessions) == []


def test_filters_and_pages_newest_first(sessions: sessionmaker[Session]) -> None:
    catalog = CatalogService(sessions)
    for n, who in enumerate((CI, ALICE, CI, ALICE, CI)):
        with acting_as(who):
            catalog.add_registry(RegistrySpec(f"r{n}", f"r{n}.test:5000"))
    with acting_as(ALICE):
        catalog.remove_registry("r0")
    every = events(sessions)
    assert [e.resource for e in every] == [
        "registries/r0",
        *(f"registries/r{n}" for n in (4, 3, 2, 1, 0)),
    ]
    assert [e.id for e in every] == sorted((e.id for e in every), reverse=True)
    assert [e.resource for e in events(sessions, principal="token:ci")] == [
        "registries/r4",
        "registries/r2",
        "registries/r0",
    ]
    assert [e.resource for e in events(sessions, kind=AuditKind.REGISTRY_DELETED)] == [
        "registries/r0"
    ]
    assert events(sessions, principal="token:nobody") == []
    # Time: since inclusive, until exclusive.
    middle = every[3].occurred_at  # r2's
    assert [e.resource for e in events(sessions, since=middle)] == [e.resource for e in every[:4]]
    assert [e.resource for e in events(sessions, until=middle)] == [e.resource for e in every[4:]]
    assert events(sessions, since=datetime.now(UTC) + timedelta(hours=1)) == []
    with pytest.raises(InvalidArgument):
        events(sessions, since=middle, until=middle - timedelta(seconds=1))
    # Pages of two, newest first, the filter kept across pages.
    audit, pages, after = AuditService(sessions), [], None
    while True:
        page = audit.list_events(AuditFilter(principal="oidc:alice"), 2, after)
        pages.append([e.resource for e in page.items])
        if page.next_after is None:
            break
        after = page.next_after
    assert pages == [["registries/r0", "registries/r3"], ["registries/r1"]]


def _decision(digest: str) -> Decision:
    return Decision(True, digest, "release", 1, "enforce", ("signed",))


async def test_decisions_record_who_asked_when_they_asked(
    sessions: sessionmaker[Session],
) -> None:
    """The log writes rows later, from its own task (started here as someone else): the asker
    is the one acting when the decision was made, not when the rows were flushed."""
    log = DecisionLog(sessions, interval=0.01)
    with acting_as(SERVER):
        log.start()
    with acting_as(CI):
        log.add("registry.test/shop/api:1", _decision("sha256:" + "a" * 64), "t1", cached=False)
    with acting_as(ALICE):
        log.add("registry.test/shop/api:2", _decision("sha256:" + "b" * 64), "t1", cached=True)
    await asyncio.sleep(0.2)  # the background flush, not stop()'s
    with sessions() as session:
        flushed = session.execute(
            select(DecisionRecord.reference, DecisionRecord.principal).order_by(DecisionRecord.id)
        ).all()
    await log.stop()
    assert [tuple(row) for row in flushed] == [
        ("registry.test/shop/api:1", "token:ci"),
        ("registry.test/shop/api:2", "oidc:alice"),
    ]
