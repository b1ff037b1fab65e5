"""What users type, taken as meant or refused at once (exit 2, one line), locally and through
``--server``: registry URLs, compound intervals, policy file errors, a host spelled another way,
tags outside the OCI grammar."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from catalog.app.config import load_config
from tests.cli.test_catalog_cli import ok, run
from tests.harness.registry import RunningRegistry
from tests.index.conftest import populate


def _registries(db: Path | None = None, server: str | None = None) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(
        ok(run("registry", "list", "-o", "json", db=db, server=server))
    )
    return listed


def _schedule(view: dict[str, Any]) -> Any:
    return view.get("indexSchedule", view.get("index_schedule"))  # before or after camelCase


def _refused(done: Any, message: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.startswith("xregistry: error: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr, done.stderr


async def test_a_registry_url_is_split_and_indexes(
    registry: RunningRegistry, fixtures_dir: Path, tmp_path: Path, rng: random.Random
) -> None:
    await populate(registry.host, fixtures_dir, rng)
    db = tmp_path / "catalog.db"
    added = ok(
        run("registry", "add", "local", f"http://{registry.host}/", "--interval", "1h30m", db=db)
    )
    assert added.strip() == f"added registry local ({registry.host})"
    (view,) = _registries(db)
    assert (view["host"], view["insecure"], _schedule(view)) == (
        registry.host,
        True,
        "interval:1h30m",
    )
    ok(run("index", "local", db=db))  # reached: the scheme is not in the host
    (view,) = _registries(db)
    assert "succeeded" in json.dumps(view).lower()
    for url, message in [
        (f"http://{registry.host}/v2/", "without a path or query"),
        (f"http://{registry.host}?x=1", "without a path or query"),
        (f"https://{registry.host}", "reached over plain HTTP unless a CA file"),
        (f"ftp://{registry.host}", "http://HOST[:PORT]"),
        ("http://u:s3cret@reg.example", "carries no credentials"),
    ]:
        done = run("registry", "add", "other", url, db=db)
        _refused(done, message)
        assert "s3cret" not in done.stderr
    for interval, message in [("0s", "between 1s and 3660d"), ("1m1h", "largest first")]:
        _refused(
            run("registry", "add", "other", registry.host, "--interval", interval, db=db), message
        )
    assert [r["name"] for r in _registries(db)] == ["local"]  # nothing refused was stored


def test_a_registry_url_through_the_server(server: str, fresh_registry: RunningRegistry) -> None:
    """CreateRegistry takes the URL as the CLI does, and refuses what the CLI refuses."""
    added = ok(run("registry", "add", "again", f"http://{fresh_registry.host}", server=server))
    assert added.strip() == f"added registry again ({fresh_registry.host})"
    views = {r["name"]: r for r in _registries(server=server)}
    assert (views["again"]["host"], views["again"]["insecure"]) == (fresh_registry.host, True)
    _refused(
        run("registry", "add", "bad", f"http://{fresh_registry.host}/v2/x", server=server),
        "without a path or query",
    )
    assert "bad" not in {r["name"] for r in _registries(server=server)}


def test_a_registry_url_in_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(
        "registries:\n"
        "  - {name: plain, host: 'http://reg.example:5000/'}\n"
        "  - {name: tls, host: 'https://reg.example'}\n"
    )
    hosts = {r.name: (r.host, r.insecure) for r in load_config(config).registries}
    assert hosts == {"plain": ("reg.example:5000", True), "tls": ("reg.example", False)}
    config.write_text("registries:\n  - {name: bad, host: 'https://reg.example/v2'}\n")
    done = run("serve", "--config", str(config))
    _refused(done, "without a path or query")


def test_a_policy_error_cites_its_file_and_line(tmp_path: Path) -> None:
    policy = tmp_path / "prod.yaml"
    policy.write_text('name: prod\nimages: ["**"]\nthreshold: 1\nbogus: true\n')
    done = run("policy", "apply", str(policy), db=tmp_path / "catalog.db")
    _refused(done, f"{policy}:4: bogus: unknown key 'bogus'")
    assert "policy default" not in done.stderr


async def test_a_host_spelled_another_way(
    server: str,
    fresh_registry: RunningRegistry,
    fixtures_dir: Path,
    rng: random.Random,
    tmp_path: Path,
) -> None:
    """The registry is known as 127.0.0.1:PORT; users write localhost:PORT (and the reverse)."""
    corpus = await populate(fresh_registry.host, fixtures_dir, rng)
    port = fresh_registry.host.rsplit(":", 1)[1]
    db = tmp_path / "catalog.db"
    ok(run("registry", "add", "local", f"localhost:{port}", db=db))
    ok(run("index", "local", db=db))
    ok(run("index", "local", server=server))  # the server's registry is 127.0.0.1:PORT
    # (database, server, the other spelling of the host)
    ways: list[tuple[Path | None, str | None, str]] = [
        (db, None, fresh_registry.host),
        (None, server, f"localhost:{port}"),
    ]
    for on_db, on_server, spelled in ways:
        show = ("artifact", "show", f"{spelled}/slsa/app:v1", "-o", "json")
        shown = json.loads(ok(run(*show, db=on_db, server=on_server)))
        assert shown["digest"] == corpus.slsa_index
        history = ("tag", "history", f"{spelled}/shop/api:1.0", "-o", "json")
        assert len(json.loads(ok(run(*history, db=on_db, server=on_server)))) == 1
        rule = ("replicate", "rule", "add", "r", "--from", f"localhost:{port}/shop/**")
        done = run(*rule, "--to", "x/y", db=on_db, server=on_server)
        _refused(done, "is registry 'local' of the catalog: write local/shop/**")
    absent = run("artifact", "show", f"localhost:{port}/slsa/app:nope", db=db)
    assert absent.returncode == 3
    done = run(
        "replicate", "rule", "add", "r", "--from", "reg.invalid:5000/a", "--to", "x/y", db=db
    )
    _refused(done, "add it first with `xregistry registry add NAME reg.invalid:5000`")


async def test_two_registries_of_one_host_answer_alike(
    server: str,
    fresh_registry: RunningRegistry,
    fixtures_dir: Path,
    rng: random.Random,
    tmp_path: Path,
) -> None:
    """Two names may share a host: ``tag history`` takes the first by name, as ``tags
    --catalog`` does, on the database as through a server (the database took whichever row
    came first: here the one added first, never indexed)."""
    await populate(fresh_registry.host, fixtures_dir, rng)
    db = tmp_path / "catalog.db"
    ok(run("registry", "add", "zz", fresh_registry.host, db=db))  # added first, not indexed
    ok(run("registry", "add", "aa", fresh_registry.host, db=db))
    ok(run("registry", "add", "aa", fresh_registry.host, server=server))  # beside "local"
    for on_db, on_server in [(db, None), (None, server)]:
        ok(run("index", "aa", db=on_db, server=on_server))
    reference = f"{fresh_registry.host}/shop/api:1.0"
    answers = [
        json.loads(ok(run("tag", "history", reference, "-o", "json", db=db))),
        json.loads(ok(run("tag", "history", reference, "-o", "json", server=server))),
    ]
    assert [len(a) for a in answers] == [1, 1]
    assert answers[0][0]["newDigest"] == answers[1][0]["newDigest"]


def test_tags_outside_the_oci_grammar_are_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    for args in [
        ("inspect", "localhost:9/a:tägé"),
        ("manifest", "localhost:9/a:tägé"),
        ("digest", "localhost:9/a:tägé"),
        ("tree", "localhost:9/a:tägé"),
        ("copy", "localhost:9/a:tägé", "localhost:9/b:x"),
        ("copy", "localhost:9/a:x", "localhost:9/b:\uff58"),
        ("artifact", "show", "localhost:9/a:tägé"),
        ("tag", "history", "localhost:9/a:tägé"),
        ("verify", "localhost:9/a:tägé"),
        ("tags", "localhost:9/ä"),
        ("inspect", "localhost:9/Ä/b:x"),
        ("inspect", "localhost:9/a:" + "x" * 129),
    ]:
        done = run(*args, db=db)
        assert done.returncode == 2, (args, done.returncode, done.stderr)
        assert done.stderr.startswith("xregistry: error: invalid "), (args, done.stderr)


def test_a_policy_file_is_read_within_bounds(tmp_path: Path) -> None:
    """A policy file is user input: past 256 KiB it is refused in one line, never read whole
    (`verify --policy`, `policy apply`, `admission review --policy`)."""
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (300 * 1024) + b"\n")
    review = tmp_path / "review.json"
    review.write_text("{}")
    db = tmp_path / "catalog.db"
    for args in (
        ("verify", "localhost:1/shop/api:1.0", "--policy", str(big)),
        ("policy", "apply", str(big)),
        ("admission", "review", str(review), "--policy", str(big)),
    ):
        _refused(run(*args, db=db), f"{big}:1: larger than 262144 bytes: not a policy set")
