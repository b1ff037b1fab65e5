"""``xregistry replicate rule|run|status`` as users run them: on the database (runs executed by
the command itself) and against a server, with real registries; messages and exit codes."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from catalog.cli.main import main
from tests.harness.images import build_image
from tests.harness.ports import free_port
from tests.replication.api_support import Registries, Served, catalog_db
from tests.replication.conftest import digest_of, push_to


class Xregistry:
    """``xregistry --database … ARGS`` (or ``--server``), in a thread: commands run their own
    event loops."""

    def __init__(self, database: str | None = None, server: str | None = None) -> None:
        self.root = ["--database", database] if database else ["--server", str(server)]

    async def __call__(self, *args: str) -> Result:
        env = {"XREGISTRY_SERVER": None, "XREGISTRY_DATABASE": None, "COLUMNS": "200"}
        runner = CliRunner(env=env)
        return await asyncio.to_thread(runner.invoke, main, [*self.root, *args])

    async def ok(self, *args: str) -> str:
        result = await self(*args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.stdout

    async def json(self, *args: str) -> Any:
        return json.loads(await self.ok(*args, "-o", "json"))


@pytest.fixture
def database(tmp_path: Path, registries: Registries) -> Xregistry:
    """A catalog database that knows the registries as `src` and `dst`."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    catalog_db(url, registries)
    return Xregistry(database=url)


async def seed(registries: Registries, rng: random.Random) -> dict[str, str]:
    digests = {}
    for repository, tag in (("shop/api", "1.0.0"), ("shop/api", "dev"), ("shop/web", "1.1.0")):
        image = build_image(rng, layers=1, layer_size=30_000)
        await push_to(registries.source.host, repository, image, tag)
        digests[f"{repository}:{tag}"] = image.digest
    return digests


async def test_rules_and_runs_on_the_database(
    database: Xregistry, registries: Registries, rng: random.Random
) -> None:
    xregistry = database
    digests = await seed(registries, rng)
    added = await xregistry.ok(
        "replicate", "rule", "add", "mirror", "--from", "src/shop/**", "--to", "dst/m",
        "--tags", "1.*", "--interval", "1h",
    )  # fmt: skip
    assert "stored rule mirror: src/shop/** → dst/m, runs every 1h" in added
    [listed] = await xregistry.json("replicate", "rule", "list")
    assert listed["name"] == "mirror"
    assert listed["include"] == ["shop/**"]
    assert listed["prefix"] == "m"
    assert listed["tags"]["globs"] == ["1.*"]
    assert listed["schedule"] == {"interval": "1h", "cron": None}
    assert listed["lastRun"] is None
    assert listed["lag"]["inSync"] is False
    table = await xregistry.ok("replicate", "rule", "list")
    for shown in ("mirror", "src/shop/**", "dst/m", "every 1h", "never", "never synced"):
        assert shown in table

    waited = await xregistry("replicate", "run", "mirror", "--wait")

    assert waited.exit_code == 0, waited.output
    assert "of rule mirror (manual): succeeded" in waited.stdout
    assert "copied" in waited.stdout
    for name in ("shop/api:1.0.0", "shop/web:1.1.0"):
        repository, tag = name.split(":")
        assert (
            await digest_of(registries.destination.host, f"m/{repository}", tag) == (digests[name])
        )
    assert await digest_of(registries.destination.host, "m/shop/api", "dev") is None
    [rule] = await xregistry.json("replicate", "status")
    run_id = rule["lastRun"]["id"]
    assert rule["lastRun"]["status"] == "succeeded"
    assert rule["lag"]["inSync"] is True
    assert "in sync" in await xregistry.ok("replicate", "status")

    detail = await xregistry.json("replicate", "status", "--run", str(run_id))
    assert detail["rule"] == "mirror"
    assert detail["status"] == "succeeded"
    assert detail["outcomes"] == {"copied": 2}
    assert (detail["tasksTotal"], detail["tasksDone"]) == (2, 2)
    assert detail["counters"]["manifestsCopied"] == 2
    assert detail["counters"]["bytesCopied"] > 2 * 30_000
    assert detail["failures"] == []
    human = await xregistry.ok("replicate", "status", "--run", str(run_id))
    assert f"run {run_id} of rule mirror (manual): succeeded" in human
    assert "manifests" in human

    # Without --wait the run waits for a server; the rule shows it.
    pending = await xregistry.json("replicate", "run", "mirror")
    assert pending["status"] == "pending"
    said = await xregistry.ok("replicate", "run", "mirror")
    assert "a running `xregistry serve` on this database executes it" in said
    mine = await xregistry.json("replicate", "status", "mirror")
    assert [r["status"] for r in mine["runs"]] == ["pending", "pending", "succeeded"]
    recent = await xregistry.ok("replicate", "status", "mirror")
    assert "recent runs of mirror" in recent

    assert "removed rule mirror" in await xregistry.ok("replicate", "rule", "remove", "mirror")
    assert await xregistry.json("replicate", "rule", "list") == []


async def test_a_failed_run_exits_1_with_the_reasons(
    database: Xregistry, registries: Registries, rng: random.Random
) -> None:
    ours, theirs = build_image(rng, layers=1), build_image(rng, layers=1)
    await push_to(registries.source.host, "app", ours, "1.0")
    await push_to(registries.destination.host, "app", theirs, "1.0")
    await database.ok(
        "replicate", "rule", "add", "careful", "--from", "src", "--to", "dst",
        "--conflict", "report",
    )  # fmt: skip

    failed = await database("replicate", "run", "careful", "--wait")

    assert failed.exit_code == 1, failed.output
    assert "failed" in failed.stdout
    assert "conflict:" in failed.stdout
    as_json = await database("replicate", "run", "careful", "--wait", "-o", "json")
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc["status"] == "failed"
    assert [(f["repository"], f["tag"], f["status"]) for f in doc["failures"]] == [
        ("app", "1.0", "conflict")
    ]
    [rule] = await database.json("replicate", "status")
    assert rule["lag"]["inSync"] is False
    assert await digest_of(registries.destination.host, "app", "1.0") == theirs.digest


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("rule", "add", "r", "--from", "src", "--to", "absent"), 3, "'absent' is not in the"),
        (("rule", "add", "r", "--from", "127.0.0.1:5000", "--to", "dst"), 2, "not a host"),
        (("rule", "add", "R!", "--from", "src", "--to", "dst"), 2, "invalid name 'R!'"),
        (("rule", "add", "r", "--from", "src", "--to", "src"), 2, "give a prefix, strip or rename"),
        (
            ("rule", "add", "r", "--from", "src", "--to", "dst/m", "--rename", "(.*)=x/\\1"),
            2,
            "give it or a PREFIX in --to, not both",
        ),
        (("rule", "add", "r", "--from", "src", "--to", "dst", "--rename", "(.*)"), 2, "REGEX="),
        (
            ("rule", "add", "r", "--from", "src", "--to", "dst", "--rename", "a=b", "--strip", "a"),
            2,
            "give it or --strip, not both",
        ),
        (("rule", "add", "r", "--from", "src", "--to", "dst", "--rename", "(=x"), 2, "pattern '('"),
        (
            ("rule", "add", "r", "--from", "src", "--to", "dst", "--rename", "a=\\g<b>"),
            2,
            "unknown group name 'b'",
        ),
        (("rule", "add", "r", "--from", "src", "--to", "dst", "--semver", "bogus"), 2, "semver"),
        (("rule", "add", "r", "--from", "src", "--to", "dst", "--tag-regex", "("), 2, "regex"),
        (("rule", "add", "r", "--from", "src", "--to", "dst", "--referrers", "x"), 2, "referrer"),
        (("rule", "add", "r", "--from", "src", "--to", "dst", "--interval", "soon"), 2, "duration"),
        (
            ("rule", "add", "r", "--from", "src", "--to", "dst", "--interval", "1h", "--cron", "x"),
            2,
            "exactly one",
        ),
        (("rule", "add", "r", "--from", "src", "--to", "dst", "--newest", "0"), 2, "--newest"),
        (("rule", "remove", "absent"), 3, "'absent' does not exist"),
        (("run", "absent"), 3, "'absent' does not exist"),
        (("status", "absent"), 3, "'absent' does not exist"),
        (("status", "--run", "99"), 3, "run 99 does not exist"),
    ],
)
async def test_bad_input_gives_a_clear_message_and_exit_code(
    database: Xregistry, args: tuple[str, ...], code: int, message: str
) -> None:
    result = await database("replicate", *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    if code != 2 or "--newest" not in args:  # click's own usage errors are several lines
        assert result.stderr.startswith("xregistry: error: ")
        assert result.stderr.count("\n") == 1


async def test_a_rule_that_renames_by_pattern(
    database: Xregistry, registries: Registries, rng: random.Random
) -> None:
    api = build_image(rng, layers=1)
    await push_to(registries.source.host, "acme/web/api", api, "1.0")
    await push_to(registries.source.host, "acme/solo", build_image(rng, layers=1), "1.0")
    rename = r"acme/(?P<team>[^/]+)/(.*)=mirror/\g<team>-\2"

    added = await database.ok(
        "replicate", "rule", "add", "teams", "--from", "src/acme/**", "--to", "dst",
        "--rename", rename,
    )  # fmt: skip

    shown = r"dst (rename acme/(?P<team>[^/]+)/(.*) → mirror/\g<team>-\2)"
    assert f"stored rule teams: src/acme/** → {shown}" in added
    [listed] = await database.json("replicate", "rule", "list")
    assert listed["rename"] == {
        "pattern": r"acme/(?P<team>[^/]+)/(.*)",
        "replacement": r"mirror/\g<team>-\2",
    }
    assert (listed["prefix"], listed["strip"]) == ("", "")
    assert shown in await database.ok("replicate", "rule", "list")

    run = await database("replicate", "run", "teams", "--wait", "-o", "json")

    assert run.exit_code == 1, run.output  # acme/solo does not match: reported, not copied
    doc = json.loads(run.stdout)
    assert doc["outcomes"] == {"copied": 1, "failed": 1}
    [failure] = doc["failures"]
    assert failure["repository"] == "acme/solo"
    assert "does not match the rename pattern" in failure["reason"]
    assert await digest_of(registries.destination.host, "mirror/web-api", "1.0") == api.digest


async def test_status_lists_the_newest_runs_of_all_rules(database: Xregistry) -> None:
    for name in ("one", "two"):
        await database.ok("replicate", "rule", "add", name, "--from", "src", "--to", f"dst/{name}")
    ids = [(await database.json("replicate", "run", name))["id"] for name in ("one", "two", "one")]

    assert "recent runs" not in await database.ok("replicate", "status")
    assert isinstance(await database.json("replicate", "status"), list)
    both = await database.json("replicate", "status", "--runs", "2")
    assert [r["name"] for r in both["rules"]] == ["one", "two"]
    assert [(r["id"], r["rule"]) for r in both["runs"]] == [(ids[2], "one"), (ids[1], "two")]
    table = await database.ok("replicate", "status", "--runs", "5")
    assert "recent runs" in table
    assert "recent runs of" not in table
    rows = [line.split() for line in table.splitlines()]  # piped: plain lines, one per row
    assert [str(ids[1]), "two", "manual", "pending"] in [r[:4] for r in rows]
    one = await database.json("replicate", "status", "one", "--runs", "1")
    assert [r["id"] for r in one["runs"]] == [ids[2]]


async def test_a_taken_name_needs_replace(database: Xregistry) -> None:
    add = ("replicate", "rule", "add", "r", "--from", "src", "--to", "dst")
    await database.ok(*add)
    taken = await database(*add, "--cron", "0 * * * *")
    assert taken.exit_code == 8  # conflict
    assert "already exists (give --replace" in taken.stderr
    replaced = await database.json(*add, "--cron", "0 * * * *", "--replace")
    assert replaced["schedule"] == {"interval": None, "cron": "0 * * * *"}


async def test_commands_against_a_server(served: Served, rng: random.Random) -> None:
    xregistry = Xregistry(server=served.address)
    digests = await seed(served.registries, rng)
    stored = await xregistry.json(
        "replicate", "rule", "add", "remote", "--from", "src/shop/api", "--to", "dst/far",
        "--semver", ">=1", "--on-index",
    )  # fmt: skip
    assert (stored["name"], stored["include"], stored["onIndex"]) == ("remote", ["shop/api"], True)
    assert stored["tags"]["semver"] == ">=1"
    assert [r["name"] for r in await xregistry.json("replicate", "rule", "list")] == ["remote"]

    # The server's worker executes the run; the command follows it to the end.
    done = await xregistry.json("replicate", "run", "remote", "--wait")

    assert done["status"] == "succeeded"
    assert done["outcomes"] == {"copied": 1}
    assert (
        await digest_of(served.registries.destination.host, "far/shop/api", "1.0.0")
        == (digests["shop/api:1.0.0"])
    )
    again = await xregistry.ok("replicate", "run", "remote", "--wait")
    assert "succeeded" in again
    detail = await xregistry.json("replicate", "status", "--run", str(done["id"]))
    assert detail == done
    [rule] = await xregistry.json("replicate", "status")
    assert rule["lag"]["inSync"] is True
    assert "in sync" in await xregistry.ok("replicate", "status")

    missing = await xregistry("replicate", "rule", "add", "x", "--from", "src", "--to", "absent")
    assert missing.exit_code == 3
    assert "'absent' is not in the catalog" in missing.stderr
    unknown = await xregistry("replicate", "status", "--run", "999")
    assert unknown.exit_code == 3
    await xregistry.ok("replicate", "rule", "remove", "remote")
    assert await xregistry.json("replicate", "rule", "list") == []

    down = await Xregistry(server=f"127.0.0.1:{free_port()}")("replicate", "rule", "list")
    assert down.exit_code == 7
    assert "cannot reach the xregistry server" in down.stderr


async def test_a_stored_rule_this_version_refuses_is_listed_as_refused(
    served: Served, tmp_path: Path
) -> None:
    """A rule row written before the tag-glob check (directly into the database): the listing
    shows the other rules and marks that one, then exits 1 with one line naming it, on the
    database and through the server alike (the old code failed the whole listing, exit 2)."""
    from sqlalchemy import select

    from replication.models import ReplicationRule

    remote = Xregistry(server=served.address)
    local = Xregistry(database=f"sqlite:///{tmp_path / 'served.db'}")
    for name in ("bad", "good"):
        await remote.ok("replicate", "rule", "add", name, "--from", "src", "--to", f"dst/{name}",
                        "--tags", "v*")  # fmt: skip
    with served.sessions.begin() as session:
        row = session.scalars(select(ReplicationRule).where(ReplicationRule.name == "bad")).one()
        row.spec = {**row.spec, "tags": {**row.spec["tags"], "globs": ["v[0-9]*"]}}
    for xregistry in (local, remote):
        for words in (("rule", "list"), ("status",)):
            listed = await xregistry("replicate", *words)
            assert listed.exit_code == 1, (words, listed.output, listed.exception)
            [line] = listed.stderr.splitlines()
            assert line.startswith("xregistry: error: stored rule 'bad': replication rule: ")
            assert line.endswith(" (listed as refused; replace or remove it)")
            names = [row.split()[0] for row in listed.stdout.splitlines()[1:]]
            assert names == ["bad", "good"], listed.stdout
            assert listed.stdout.splitlines()[1].split()[1] == "refused"
            as_json = await xregistry("replicate", *words, "-o", "json")
            assert (as_json.exit_code, as_json.stderr) == (1, listed.stderr)
            bad, good = json.loads(as_json.stdout)
            assert (bad["name"], good["name"]) == ("bad", "good")
            assert bad["refused"] == line.removeprefix("xregistry: error: ").removesuffix(
                " (listed as refused; replace or remove it)"
            )
            assert good["tags"]["globs"] == ["v*"]
