"""ReplicationService through a real gRPC channel: rules, errors, runs executed by a worker in the
same event loop between two real registries, WatchRun's stream, ListRuns' pages."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from catalog.api.replication_convert import rule_spec, run_message, run_view, spec_message
from catalog.api.v1 import replication_pb2 as pb
from catalog.cli.remote_replication import RemoteReplication
from catalog.store.queries import Key
from replication.models import TASK_COUNTERS
from replication.service import RunView, TaskFailure
from replication.spec import parse_spec
from replication.statuses import RunStatus, TaskStatus, Trigger
from tests.harness.images import build_image
from tests.replication.api_support import Served
from tests.replication.conftest import digest_of, push_to

if TYPE_CHECKING:
    from tests.replication.api_support import Stub


def rule(name: str = "mirror", **fields: object) -> pb.Rule:
    """A rule named ``rules/{name}`` from ``src`` to ``dst``; ``source`` and ``destination``
    are given as registry ids."""
    values: dict[str, object] = {"source": "src", "destination": "dst", **fields}
    for end in ("source", "destination"):
        values[end] = f"registries/{values[end]}"
    return pb.Rule(name=f"rules/{name}", **values)  # type: ignore[arg-type]


async def create(stub: Stub, message: pb.Rule) -> pb.Rule:
    request = pb.CreateRuleRequest(rule_id=message.name.removeprefix("rules/"), rule=message)
    return (await stub.CreateRule(request)).rule


async def start(stub: Stub, name: str) -> pb.Run:
    return (await stub.RunRule(pb.RunRuleRequest(name=f"rules/{name}"))).run


def run_number(run: pb.Run) -> int:
    return int(run.name.rpartition("/")[2])


def task_counts(run: pb.Run) -> dict[str, int]:
    return {pb.TaskStatus.Name(c.status): c.count for c in run.task_counts}


async def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code()


async def test_rules_are_stored_listed_replaced_and_deleted(served: Served) -> None:
    stub = served.stub
    r = await create(
        stub,
        rule(
            include=["shop/**"],
            prefix="mirror",
            tags=pb.TagFilter(semver="^1.2", newest=3),
            conflict=pb.CONFLICT_POLICY_REPORT,
            schedule=pb.Schedule(interval="15m"),
            on_index=True,
        ),
    )
    assert (r.name, r.source, r.destination, list(r.include), r.prefix) == (
        "rules/mirror",
        "registries/src",
        "registries/dst",
        ["shop/**"],
        "mirror",
    )
    assert (r.tags.semver, r.tags.newest, r.tags.newest_by) == ("^1.2", 3, pb.NEWEST_BY_TAG)
    assert r.conflict == pb.CONFLICT_POLICY_REPORT
    assert r.schedule.WhichOneof("schedule") == "interval"
    assert r.schedule.interval == "15m"
    assert r.on_index
    assert r.referrers == "all"
    assert r.origin == pb.RULE_ORIGIN_API
    assert r.HasField("create_time")
    assert not r.HasField("last_run")
    assert not r.lag.in_sync  # nothing was ever copied
    got = (await stub.GetRule(pb.GetRuleRequest(name="rules/mirror"))).rule
    for message in (got, r):
        message.lag.ClearField("behind")  # it grows by the second
    assert got == r

    # Creating a taken name fails; updating it works and keeps the creation time.
    assert await code_of(create(stub, rule())) == grpc.StatusCode.ALREADY_EXISTS
    replaced = (await stub.UpdateRule(pb.UpdateRuleRequest(rule=rule()))).rule
    assert list(replaced.include) == ["**"]
    assert not replaced.HasField("schedule")
    assert replaced.create_time == r.create_time

    for name in ("b-rule", "a-rule", "c-rule"):
        await create(stub, rule(name, prefix=name))
    names: list[str] = []
    request = pb.ListRulesRequest(page_size=3)
    while True:
        page = await stub.ListRules(request)
        names += [x.name for x in page.rules]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert names == ["rules/a-rule", "rules/b-rule", "rules/c-rule", "rules/mirror"]

    await stub.DeleteRule(pb.DeleteRuleRequest(name="rules/b-rule"))
    assert await code_of(stub.GetRule(pb.GetRuleRequest(name="rules/b-rule"))) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert await code_of(stub.DeleteRule(pb.DeleteRuleRequest(name="rules/b-rule"))) == (
        grpc.StatusCode.NOT_FOUND
    )


async def test_a_rule_renamed_by_pattern_round_trips(served: Served) -> None:
    rename = pb.Rename(pattern=r"acme/(?P<team>[^/]+)/(.*)", replacement=r"mirror/\g<team>-\2")
    stored = await create(served.stub, rule(rename=rename))
    got = (await served.stub.GetRule(pb.GetRuleRequest(name="rules/mirror"))).rule

    for message in (stored, got):
        assert message.rename == rename
        assert (message.prefix, message.strip) == ("", "")
    spec = rule_spec(got)
    assert spec.rename is not None
    assert spec.rule("a", "b").rewrite.apply("acme/web/api") == "mirror/web-api"
    assert spec_message(spec).rename == rename
    assert not spec_message(parse_spec({"name": "x", "source": "a", "destination": "b"})).HasField(
        "rename"
    )
    # A rename moves the copies elsewhere: source and destination may be the same registry.
    same = rule("inplace", destination="src", rename=pb.Rename(pattern="(.*)", replacement=r"m/\1"))
    assert (await create(served.stub, same)).rename.pattern == "(.*)"


def test_every_run_counter_goes_through_the_api() -> None:
    counters = {name: n for n, name in enumerate(TASK_COUNTERS, start=1)}
    view = RunView(
        id=7,
        rule="mirror",
        trigger=Trigger.MANUAL,
        scheduled_for=None,
        status=RunStatus.FAILED,
        error=None,
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        started_at=datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC),
        finished_at=datetime(2025, 1, 2, 3, 4, 7, tzinfo=UTC),
        tasks_total=3,
        tasks_done=3,
        outcomes={TaskStatus.COPIED: 2, TaskStatus.FAILED: 1},
        counters=counters,
        failures=(TaskFailure("app", "1.0", TaskStatus.FAILED, "digest mismatch"),),
    )
    message = run_message(view)
    assert (message.name, message.rule) == ("rules/mirror/runs/7", "rules/mirror")
    assert task_counts(message) == {"TASK_STATUS_COPIED": 2, "TASK_STATUS_FAILED": 1}
    assert message.failures[0].status == pb.TASK_STATUS_FAILED
    assert (message.manifests.copied, message.referrers.failed) == (
        counters["manifests_copied"],
        counters["referrers_failed"],
    )
    assert message.blobs_mounted == counters["blobs_mounted"]
    assert run_view(message) == view


@pytest.mark.parametrize(
    ("bad", "code", "message"),
    [
        (rule(destination="nowhere"), grpc.StatusCode.NOT_FOUND, "'nowhere' is not in the catalog"),
        (rule(name="Bad_Name"), grpc.StatusCode.INVALID_ARGUMENT, "name"),
        (rule(source="src", destination="src"), grpc.StatusCode.INVALID_ARGUMENT, "the same"),
        (rule(tags=pb.TagFilter(regex="(")), grpc.StatusCode.INVALID_ARGUMENT, "tag regex"),
        (rule(tags=pb.TagFilter(semver="one")), grpc.StatusCode.INVALID_ARGUMENT, "semver"),
        (rule(tags=pb.TagFilter(newest=-1)), grpc.StatusCode.INVALID_ARGUMENT, "newest"),
        (rule(referrers="gossip"), grpc.StatusCode.INVALID_ARGUMENT, "referrer kinds"),
        (rule(schedule=pb.Schedule()), grpc.StatusCode.INVALID_ARGUMENT, "exactly one"),
        (
            rule(schedule=pb.Schedule(cron="every day")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "schedule",
        ),
        (rule(name=""), grpc.StatusCode.INVALID_ARGUMENT, "name"),
        (
            rule(rename=pb.Rename(pattern="(", replacement="x")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "rename pattern '('",
        ),
        (
            rule(rename=pb.Rename(pattern="(a)", replacement=r"\g<team>")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown group name 'team'",
        ),
        (
            rule(prefix="m", rename=pb.Rename(pattern="(.*)", replacement=r"\1")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not both",
        ),
        (rule(rename=pb.Rename()), grpc.StatusCode.INVALID_ARGUMENT, "needs a pattern"),
    ],
)
async def test_bad_rules_are_refused(
    served: Served, bad: pb.Rule, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(served.stub, bad)
    assert caught.value.code() == code
    assert message in (caught.value.details() or "")


async def test_bad_requests(served: Served) -> None:
    stub = served.stub
    invalid, missing = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    assert await code_of(stub.CreateRule(pb.CreateRuleRequest(rule_id="x"))) == invalid
    assert await code_of(stub.UpdateRule(pb.UpdateRuleRequest())) == invalid
    assert await code_of(stub.GetRule(pb.GetRuleRequest())) == invalid
    assert await code_of(stub.RunRule(pb.RunRuleRequest(name="rules/absent"))) == missing
    assert await code_of(stub.GetRun(pb.GetRunRequest(name="rules/-/runs/0"))) == invalid
    assert await code_of(stub.GetRun(pb.GetRunRequest(name="rules/-/runs/999"))) == missing
    assert await code_of(stub.ListRuns(pb.ListRunsRequest(parent="rules/absent"))) == missing
    forged = pb.ListRunsRequest(parent="rules/-", page_token="forged")
    assert await code_of(stub.ListRuns(forged)) == invalid
    assert await code_of(stub.ListRules(pb.ListRulesRequest(page_size=-1))) == invalid
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.WatchRun(pb.WatchRunRequest(name="rules/-/runs/999")):
            pass
    assert caught.value.code() == missing


async def watch(stub: Stub, run: pb.Run) -> list[pb.Run]:
    return [m.run async for m in stub.WatchRun(pb.WatchRunRequest(name=run.name), timeout=60)]


async def test_triggered_run_copies_and_is_watched_to_the_end(
    served: Served, rng: random.Random
) -> None:
    source, destination = served.registries.source.host, served.registries.destination.host
    images = {}
    for repository, tag in (("shop/api", "1.0"), ("shop/api", "1.1"), ("shop/web", "2.0")):
        image = build_image(rng, layers=2, layer_size=20_000)
        await push_to(source, repository, image, tag)
        images[repository, tag] = image.digest
    await push_to(source, "other/x", build_image(rng, layers=1), "1")  # not in the rule
    await create(served.stub, rule(include=["shop/**"], prefix="m"))

    run = await start(served.stub, "mirror")
    assert (run.rule, run.trigger, run.status) == (
        "rules/mirror",
        pb.RUN_TRIGGER_MANUAL,
        pb.RUN_STATUS_PENDING,
    )
    assert run.name == f"rules/mirror/runs/{run_number(run)}"
    stream = await watch(served.stub, run)

    final = stream[-1]
    assert final.status == pb.RUN_STATUS_SUCCEEDED, final
    assert all(m.status != pb.RUN_STATUS_SUCCEEDED for m in stream[:-1])
    assert [m.tasks_done for m in stream] == sorted(m.tasks_done for m in stream)
    assert (final.tasks_total, final.tasks_done) == (3, 3)
    assert task_counts(final) == {"TASK_STATUS_COPIED": 3}
    assert final.manifests.copied == 3
    assert final.blobs.copied == 3 * 3  # a config and two layers each, all different
    assert final.bytes.copied > 3 * 2 * 20_000
    assert (final.manifests.failed, final.blobs.failed, final.referrers.failed) == (0, 0, 0)
    assert list(final.failures) == []
    assert final.HasField("start_time")
    assert final.HasField("finish_time")
    for (repository, tag), digest in images.items():
        assert await digest_of(destination, f"m/{repository}", tag) == digest
    assert await digest_of(destination, "m/other/x", "1") is None

    got = (await served.stub.GetRule(pb.GetRuleRequest(name="rules/mirror"))).rule
    assert got.last_run.name == run.name
    assert got.last_run.status == pb.RUN_STATUS_SUCCEEDED
    assert got.lag.in_sync
    assert got.lag.HasField("synced_time")

    # Again: everything is there, nothing moves.
    again = await start(served.stub, "mirror")
    second = (await watch(served.stub, again))[-1]
    assert second.status == pb.RUN_STATUS_SUCCEEDED
    assert task_counts(second) == {"TASK_STATUS_SKIPPED": 3}
    assert second.bytes.copied == 0
    # A finished run streams once and ends; without its rule, the run is named all the same.
    assert [m.name for m in await watch(served.stub, run)] == [run.name]
    anyrule = pb.GetRunRequest(name=f"rules/-/runs/{run_number(run)}")
    assert (await served.stub.GetRun(anyrule)).run.name == run.name
    wrong = pb.GetRunRequest(name=f"rules/other/runs/{run_number(run)}")
    assert await code_of(served.stub.GetRun(wrong)) == grpc.StatusCode.NOT_FOUND


async def test_failed_tasks_are_listed_with_reasons(served: Served, rng: random.Random) -> None:
    source, destination = served.registries.source.host, served.registries.destination.host
    ours, theirs = build_image(rng, layers=1), build_image(rng, layers=1)
    await push_to(source, "app", ours, "1.0")
    await push_to(source, "app", build_image(rng, layers=1), "1.1")
    await push_to(destination, "app", theirs, "1.0")
    await create(served.stub, rule("careful", conflict=pb.CONFLICT_POLICY_REPORT))

    run = await start(served.stub, "careful")
    await watch(served.stub, run)
    final = (await served.stub.GetRun(pb.GetRunRequest(name=run.name))).run

    assert final.status == pb.RUN_STATUS_FAILED
    assert task_counts(final) == {"TASK_STATUS_COPIED": 1, "TASK_STATUS_CONFLICT": 1}
    [failure] = final.failures
    assert (failure.repository, failure.tag, failure.status) == (
        "app",
        "1.0",
        pb.TASK_STATUS_CONFLICT,
    )
    assert failure.reason
    assert await digest_of(destination, "app", "1.0") == theirs.digest
    lag = (await served.stub.GetRule(pb.GetRuleRequest(name="rules/careful"))).rule.lag
    assert not lag.in_sync


async def test_list_runs_pages_newest_first(served: Served) -> None:
    stub = served.stub
    await create(stub, rule("one", prefix="one"))
    await create(stub, rule("two", prefix="two"))
    ones = [run_number(await start(stub, "one")) for _ in range(5)]
    twos = [run_number(await start(stub, "two")) for _ in range(2)]

    pages: list[list[int]] = []
    request = pb.ListRunsRequest(parent="rules/one", page_size=2)
    while True:
        answer = await stub.ListRuns(request)
        pages.append([run_number(r) for r in answer.runs])
        assert all(r.rule == "rules/one" for r in answer.runs)
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    assert pages == [ones[:-3:-1], ones[-3:-5:-1], ones[:1]]

    everything = await stub.ListRuns(pb.ListRunsRequest(parent="rules/-", page_size=100))
    assert [run_number(r) for r in everything.runs] == sorted(ones + twos, reverse=True)
    # A token only goes with the parent it was issued for.
    first = await stub.ListRuns(pb.ListRunsRequest(parent="rules/one", page_size=2))
    other = pb.ListRunsRequest(parent="rules/two", page_size=2, page_token=first.next_page_token)
    assert await code_of(stub.ListRuns(other)) == grpc.StatusCode.INVALID_ARGUMENT

    # Deleting a rule deletes its runs.
    await stub.DeleteRule(pb.DeleteRuleRequest(name="rules/one"))
    left = await stub.ListRuns(pb.ListRunsRequest(parent="rules/-"))
    assert sorted(run_number(r) for r in left.runs) == sorted(twos)


async def test_the_cli_backend_pages_runs_like_the_database(served: Served) -> None:
    await create(served.stub, rule("one", prefix="one"))
    await create(served.stub, rule("two", prefix="two"))
    for name in ("one", "two", "one", "one", "two"):
        await start(served.stub, name)
    remote = RemoteReplication(served.address)

    def pages(rule_name: str | None, size: int) -> list[list[int]]:
        found: list[list[int]] = []
        after: Key | None = None
        while True:
            page = remote.list_runs(rule_name, size, after)
            found.append([r.id for r in page.items])
            if page.next_after is None:
                return found
            after = page.next_after

    newest_first = [r.id for r in (await asyncio.to_thread(remote.list_runs)).items]
    assert newest_first == sorted(newest_first, reverse=True)
    assert len(newest_first) == 5
    paged = await asyncio.to_thread(pages, None, 2)
    assert paged == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    ones = [r.id for r in (await asyncio.to_thread(remote.list_runs, "one")).items]
    assert await asyncio.to_thread(pages, "one", 2) == [ones[:2], ones[2:]]
    # A run id from elsewhere (no token for it here) pages on from that run all the same.
    fresh = RemoteReplication(served.address)
    page = await asyncio.to_thread(fresh.list_runs, None, 2, (newest_first[1],))
    assert ([r.id for r in page.items], page.next_after) == (newest_first[2:4], (newest_first[3],))
    last = await asyncio.to_thread(fresh.list_runs, None, 2, (newest_first[3],))
    assert ([r.id for r in last.items], last.next_after) == (newest_first[4:], None)


async def test_update_rule_creates_only_when_allowed_and_updates_the_masked_fields(
    served: Served,
) -> None:
    stub = served.stub
    missing = pb.UpdateRuleRequest(rule=rule("fresh", prefix="p"))
    assert await code_of(stub.UpdateRule(missing)) == grpc.StatusCode.NOT_FOUND
    missing.allow_missing = True
    created = (await stub.UpdateRule(missing)).rule
    assert (created.name, created.prefix, created.origin) == (
        "rules/fresh",
        "p",
        pb.RULE_ORIGIN_API,
    )

    # Only the masked fields change; the others keep their stored values.
    change = rule("fresh", prefix="q", tags=pb.TagFilter(semver="^2"), on_index=True)
    masked = pb.UpdateRuleRequest(rule=change, update_mask=FieldMask(paths=["tags.semver"]))
    updated = (await stub.UpdateRule(masked)).rule
    assert (updated.prefix, updated.tags.semver, updated.on_index) == ("p", "^2", False)
    assert updated.create_time == created.create_time
    # A mask naming a field a rule lacks, or one the server sets, is refused.
    for paths in (["nonsense"], ["origin"], ["name"]):
        bad = pb.UpdateRuleRequest(rule=change, update_mask=FieldMask(paths=paths))
        assert await code_of(stub.UpdateRule(bad)) == grpc.StatusCode.INVALID_ARGUMENT
    # Without a mask, the rule is replaced whole.
    whole = (await stub.UpdateRule(pb.UpdateRuleRequest(rule=change))).rule
    assert (whole.prefix, whole.tags.semver, whole.on_index) == ("q", "^2", True)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "mirror",
        "rules/",
        "rules/Mirror",
        "rules/mirror/",
        "rules/../mirror",
        "rules/mirror/runs/1",
        "rules/-",
        "rules/mirror%2F..",
        "rules/" + "m" * 64,
        "policies/mirror",
        "rules/mirror\n",
        "rules/mirror\x00",
    ],
)
async def test_malformed_rule_names_are_invalid_arguments(served: Served, name: str) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(served.stub.GetRule(pb.GetRuleRequest(name=name))) == invalid
    assert await code_of(served.stub.DeleteRule(pb.DeleteRuleRequest(name=name))) == invalid
    assert await code_of(served.stub.RunRule(pb.RunRuleRequest(name=name))) == invalid
    update = pb.UpdateRuleRequest(rule=pb.Rule(name=name), allow_missing=True)
    assert await code_of(served.stub.UpdateRule(update)) == invalid


@pytest.mark.parametrize(
    "name",
    [
        "",
        "7",
        "runs/7",
        "rules/-/runs/",
        "rules/-/runs/0",
        "rules/-/runs/-1",
        "rules/-/runs/07",
        "rules/-/runs/1e3",
        "rules/-/runs/99999999999999999999",
        "rules/Mirror/runs/7",
        "rules/mirror/runs/7/tasks/1",
        "rules/mirror/run/7",
    ],
)
async def test_malformed_run_names_are_invalid_arguments(served: Served, name: str) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(served.stub.GetRun(pb.GetRunRequest(name=name))) == invalid
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in served.stub.WatchRun(pb.WatchRunRequest(name=name)):
            pass
    assert caught.value.code() == invalid


@pytest.mark.parametrize(
    "parent", ["", "-", "rules", "rules/", "rules/*", "rules/-/runs", "rules/Mirror", "runs/-"]
)
async def test_malformed_runs_parents_are_invalid_arguments(served: Served, parent: str) -> None:
    listing = pb.ListRunsRequest(parent=parent)
    assert await code_of(served.stub.ListRuns(listing)) == grpc.StatusCode.INVALID_ARGUMENT
