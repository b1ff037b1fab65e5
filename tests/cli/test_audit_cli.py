"""`xregistry audit` on the database directly: the local user's changes, filtered, as a table
and as JSON (lowerCamelCase keys, RFC 3339 UTC times)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from tests.cli.test_catalog_cli import assert_recent_utc, ok, run


def test_local_changes_are_the_local_users(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    ok(run("registry", "add", "hub", "hub.test:5000", db=db))
    ok(run("registry", "add", "other", "other.test:5000", db=db))
    ok(run("registry", "remove", "hub", db=db))
    assert run("registry", "remove", "hub", db=db).returncode == 3  # failed: no event
    found = json.loads(ok(run("audit", "-o", "json", db=db)))
    me = f"local:{getpass.getuser()}"
    assert [(e["principal"], e["kind"], e["resource"]) for e in found] == [
        (me, "registry.deleted", "registries/hub"),
        (me, "registry.created", "registries/other"),
        (me, "registry.created", "registries/hub"),
    ]
    deleted, _, created = found
    assert deleted["before"] == created["after"]
    assert deleted["before"].startswith("sha256:")
    assert deleted["after"] is None
    for event in found:
        assert_recent_utc(event["time"])

    only = json.loads(ok(run("audit", "--kind", "registry.deleted", "-o", "json", db=db)))
    assert [e["resource"] for e in only] == ["registries/hub"]
    assert json.loads(ok(run("audit", "--principal", "token:ci", "-o", "json", db=db))) == []
    assert json.loads(ok(run("audit", "--until", "1h", "-o", "json", db=db))) == []
    recent = json.loads(ok(run("audit", "--since", "2026-01-01T00:00:00Z", "-o", "json", db=db)))
    assert len(recent) == 3
    assert len(json.loads(ok(run("audit", "--limit", "2", "-o", "json", db=db)))) == 2
    table = ok(run("audit", db=db))  # folded to 80 columns: words, not whole values
    for word in ("principal", "kind", "resource", "before", "after", "registry", "sha256"):
        assert word in table


def test_bad_filters_are_usage_errors(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    for args in (
        ("--since", "yesterday"),
        ("--kind", "policy.deleted"),
        ("--since", "1h", "--until", "2h"),  # the range ends before it starts
        ("--principal", "token:" + "a" * 600),  # longer than any stored (as with --server)
    ):
        done = run("audit", *args, db=db)
        assert done.returncode == 2, (args, done.stderr)
