"""The catalog commands as users run them: against the database, and against `xregistry serve`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.harness.ports import free_port
from tests.harness.registry import RunningRegistry
from tests.index.conftest import SLSA_BUILDER, SPDX_PURL, populate


def run(
    *args: str, db: Path | None = None, server: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("XREGISTRY_SERVER", None)
    env.pop("XREGISTRY_DATABASE", None)
    if db is not None:
        env["XREGISTRY_DATABASE"] = f"sqlite:///{db}"
    prefix = ["--server", server] if server else []
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli.main", *prefix, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=cwd,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_recent_utc(stamp: str) -> None:
    """JSON timestamps are RFC 3339 in UTC (``…Z``), whichever backend answered."""
    assert stamp.endswith("Z"), stamp
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=5)


async def test_registry_index_and_questions_on_the_database(
    registry: RunningRegistry, fixtures_dir: Path, tmp_path: Path, rng: random.Random
) -> None:
    corpus = await populate(registry.host, fixtures_dir, rng)
    db = tmp_path / "catalog.db"
    ok(run("registry", "add", "local", registry.host, "--interval", "15m", db=db))
    listed = json.loads(ok(run("registry", "list", "-o", "json", db=db)))
    assert [(r["name"], r["host"], r["indexSchedule"]) for r in listed] == [
        ("local", registry.host, "interval:15m")
    ]
    table = ok(run("index", "local", db=db))
    assert "manifestsNew" in table
    (indexed,) = json.loads(ok(run("registry", "list", "-o", "json", db=db)))
    assert_recent_utc(indexed["lastIndexAt"])
    shown = json.loads(
        ok(run("artifact", "show", f"{registry.host}/slsa/app:v1", "-o", "json", db=db))
    )
    assert shown["digest"] == corpus.slsa_index
    builders = [a["provenance"]["builderId"] for a in shown["attestations"] if a["provenance"]]
    assert builders == [SLSA_BUILDER]
    human = ok(run("artifact", "show", f"{registry.host}/slsa/app:v1", db=db))
    assert "builder id" in human
    found = json.loads(ok(run("find", SPDX_PURL, "-o", "json", db=db)))
    assert [m["artifactDigest"] for m in found] == [corpus.images["shop/api:1.0"]]
    history = json.loads(
        ok(run("tag", "history", f"{registry.host}/shop/api:1.1", "-o", "json", db=db))
    )
    assert [(e["oldDigest"], e["newDigest"]) for e in history] == [
        (None, corpus.images["shop/api:1.1"])
    ]
    assert_recent_utc(history[0]["observedAt"])
    ok(run("registry", "remove", "local", db=db))
    assert json.loads(ok(run("registry", "list", "-o", "json", db=db))) == []


def test_cli_errors_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    cases = [
        (("registry", "add", "Bad_Name", "localhost:5000"), 2, "invalid registry name"),
        (("index", "absent"), 3, "no registry named 'absent'"),
        (("artifact", "show", "sha256:" + "0" * 64), 3, "no artifact"),
        (("find", "not-a-purl"), 2, "invalid package URL"),
        (("registry", "add", "x", "localhost:5000", "--interval", "soon"), 2, "invalid duration"),
    ]
    for args, code, message in cases:
        done = run(*args, db=db)
        assert done.returncode == code, (args, done.stderr)
        assert message in done.stderr


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("registries:\n  - name: local\n    hots: localhost:5000\n")
    done = run("serve", "--config", str(config))
    assert done.returncode == 2
    assert "registries[0].host: Field required" in done.stderr
    assert "registries[0].hots: Extra inputs are not permitted" in done.stderr


async def test_cli_against_a_running_server(
    server: str, fresh_registry: RunningRegistry, fixtures_dir: Path, rng: random.Random
) -> None:
    registry = fresh_registry
    corpus = await populate(registry.host, fixtures_dir, rng)
    listed = json.loads(ok(run("registry", "list", "-o", "json", server=server)))
    assert [r["name"] for r in listed] == ["local"]
    stats = json.loads(ok(run("index", "local", "-o", "json", server=server)))
    assert stats["errors"] == 0
    (indexed,) = json.loads(ok(run("registry", "list", "-o", "json", server=server)))
    assert_recent_utc(indexed["lastIndexAt"])
    shown = json.loads(
        ok(run("artifact", "show", f"{registry.host}/slsa/app:v1", "-o", "json", server=server))
    )
    assert shown["digest"] == corpus.slsa_index
    assert [a["provenance"]["builderId"] for a in shown["attestations"]] == [SLSA_BUILDER]
    found = json.loads(ok(run("find", SPDX_PURL, "-o", "json", server=server)))
    assert [m["artifactDigest"] for m in found] == [corpus.images["shop/api:1.0"]]
    history = json.loads(
        ok(run("tag", "history", f"{registry.host}/shop/api:1.0", "-o", "json", server=server))
    )
    assert history[0]["newDigest"] == corpus.images["shop/api:1.0"]
    assert_recent_utc(history[0]["observedAt"])
    missing = run("artifact", "show", "sha256:" + "1" * 64, server=server)
    assert missing.returncode == 3
    down = run("registry", "list", server=f"127.0.0.1:{free_port()}")
    assert down.returncode == 7
    assert "cannot reach the xregistry server" in down.stderr


def test_index_an_image_layout(fixtures_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    layout = fixtures_dir / "slsa-container" / "v2.0.0" / "container_workflow_dispatch"
    ok(run("registry", "add", "layout", f"oci:{layout}", db=db))
    ok(run("index", "layout", db=db))
    digest = (layout.parent / "container_workflow_dispatch.digest").read_text().strip()
    shown = json.loads(ok(run("artifact", "show", digest, "-o", "json", db=db)))
    assert [a["provenance"]["builderId"] for a in shown["attestations"] if a["provenance"]]
