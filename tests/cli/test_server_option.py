"""``--server`` everywhere: a command given a server talks to it or fails, exit 7 when nothing
answers, and never opens (or creates) a database of its own. Local and remote fail alike."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.cli.main import main
from catalog.oci.client import RegistryClient
from tests.cli.test_catalog_cli import ok, run
from tests.harness.images import build_image
from tests.harness.ports import free_port
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

EXIT_UNREACHABLE = 7

# Commands that never use a catalog, so never a server: they read registries, files or a
# layout directly (and `serve` is the server). Anything else must reach the server or fail.
WITHOUT_CATALOG = {
    "copy": ("oci:./absent", "oci:./copied"),
    "digest": ("oci:./absent",),
    "inspect": ("oci:./absent",),
    "manifest": ("oci:./absent",),
    "tags": ("oci:./absent",),  # live; `tags --catalog` asks the server (test_lookup_cli.py)
    "tree": ("oci:./absent",),
    "replicate once": ("--from", "127.0.0.1:9/a", "--to", "127.0.0.1:9/b", "-o", "json"),
    "trust verify-bundle": ("--bundle", "input.yaml", "sha256:" + "0" * 64),
    "serve": (),
    # The webhook's code on the local catalog; a server's webhook is its admission listener,
    # so --server is refused (exit 2) like serve's.
    "admission review": ("input.yaml",),
}
# Arguments of commands whose generated ones would be refused before any server is asked.
ARGUMENTS = {
    "replicate rule add": ("r", "--from", "a/x", "--to", "b/y"),
}


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Every leaf command of the tree, by its words: ``{"policy apply": …}``."""
    ctx = click.Context(group)
    found: dict[str, click.Command] = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        words = (*prefix, name)
        if isinstance(command, click.Group):
            found |= commands(command, words)
        else:
            found[" ".join(words)] = command
    return found


def arguments(command: click.Command, given: Path) -> list[str]:
    """Arguments that pass the command line's own checks: every argument (optional ones too)
    and required option; files are ``given``."""
    values: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option) and not param.required:
            continue
        if isinstance(param.type, click.Path):
            value = str(given)
        elif isinstance(param.type, click.Choice):
            value = str(param.type.choices[0])
        elif isinstance(param.type, click.types.IntParamType):
            value = "1"
        else:
            value = "x"
        if isinstance(param, click.Option):
            values += [param.opts[0], value]
        else:
            values.append(value)
    return values


def xregistry(
    args: list[str], cwd: Path, server: str, *, by_env: bool
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XREGISTRY_")}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    prefix = [] if by_env else ["--server", server]
    if by_env:
        env["XREGISTRY_SERVER"] = server
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli.main", *prefix, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=cwd,
    )


def test_every_command_with_a_server_and_none_listening(tmp_path: Path) -> None:
    tree = commands(main)
    assert {"verify", "policy apply", "policy list", "policy test", "registry add", "index"} <= set(
        tree
    )
    assert set(WITHOUT_CATALOG) <= set(tree)
    server = f"127.0.0.1:{free_port()}"  # nothing listens there

    def attempt(item: tuple[int, str]) -> tuple[str, Path, subprocess.CompletedProcess[str]]:
        index, words = item
        cwd = tmp_path / words.replace(" ", "-")
        cwd.mkdir()
        given = cwd / "input.yaml"
        given.write_text('name: x\nimages: ["**"]\n')  # a policy: `policy apply` checks it first
        args = [*words.split(), *ARGUMENTS.get(words, WITHOUT_CATALOG.get(words, ()))]
        if words not in ARGUMENTS and words not in WITHOUT_CATALOG:
            args += arguments(tree[words], given)
        # Both ways of naming the server (but `serve` only with the option: with the
        # variable it would start serving, as it should).
        by_env = index % 2 == 1 and words != "serve"
        return words, cwd, xregistry(args, cwd, server, by_env=by_env)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, enumerate(sorted(tree))))
    for words, cwd, done in results:
        assert sorted(p.name for p in cwd.iterdir()) == ["input.yaml"], (words, done.stderr)
        if words in WITHOUT_CATALOG:
            assert done.returncode not in (0, EXIT_UNREACHABLE), (words, done.stderr)
            continue
        assert done.returncode == EXIT_UNREACHABLE, (words, done.returncode, done.stderr)
        assert done.stderr.startswith(
            f"xregistry: error: cannot reach the xregistry server at {server}: "
        ), (words, done.stderr)
        assert done.stderr.count("\n") == 1, (words, done.stderr)
        assert done.stdout == "", (words, done.stdout)
    serve = next(done for words, _, done in results if words == "serve")
    assert (serve.returncode, serve.stderr) == (
        2,
        "xregistry: error: serve is the server: --server names one to talk to (see --listen)\n",
    )


async def test_verify_and_policy_through_a_server_as_on_the_database(
    server: str, fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    host = fresh_registry.host
    key = ec.generate_private_key(ec.SECP256R1())
    signed, unsigned = build_image(rng, layers=1), build_image(rng, layers=1)
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", signed, "signed")
        await push_built(client, "shop/app", unsigned, "unsigned")
        await push_signature(client, "shop/app", signed.digest, key)
    policy = tmp_path / "policy.yaml"
    policy.write_text(key_policy(host, key))
    work = tmp_path / "work"
    work.mkdir()

    def remote(*args: str) -> subprocess.CompletedProcess[str]:
        return run(*args, server=server, cwd=work)

    assert json.loads(ok(remote("policy", "list", "-o", "json"))) == []
    applied = json.loads(ok(remote("policy", "apply", str(policy), "-o", "json")))
    assert (applied["name"], applied["version"], applied["created"]) == ("default", 1, True)
    assert applied["createdAt"].endswith("Z")
    again = json.loads(ok(remote("policy", "apply", str(policy), "-o", "json")))
    assert (again["version"], again["created"]) == (1, False)
    assert "policy default unchanged at version 1" in ok(remote("policy", "apply", str(policy)))
    listed = json.loads(ok(remote("policy", "list", "-o", "json")))
    assert [(p["name"], p["version"], p["digest"]) for p in listed] == [
        ("default", 1, applied["digest"])
    ]
    # Not a terminal: the table is as wide as its rows, the digest whole on its line.
    assert applied["digest"] in ok(remote("policy", "list"))

    ok(remote("index", "local", "-o", "json"))
    allowed = remote("verify", f"{host}/shop/app:signed", "-o", "json")
    assert allowed.returncode == 0, allowed.stderr
    doc = json.loads(allowed.stdout)
    assert (doc["allowed"], doc["digest"], doc["policyVersion"]) == (True, signed.digest, 1)
    assert doc["evidence"][0]["method"] == "key"
    assert doc["evidence"][0]["attachmentDigest"].startswith("sha256:")
    denied = remote("verify", f"{host}/shop/app:unsigned")
    assert denied.returncode == 1, denied.stderr
    assert f"DENIED: {host}/shop/app:unsigned ({unsigned.digest})" in denied.stdout

    # The server judges with what it stores and trusts: a local file or trust is refused.
    adhoc = remote("verify", f"{host}/shop/app:signed", "--policy", str(policy))
    assert (adhoc.returncode, adhoc.stderr.count("\n")) == (2, 1), adhoc.stderr
    assert "a server judges with its stored policy sets" in adhoc.stderr
    staging = remote("policy", "test", str(policy), "--staging")
    assert (staging.returncode, staging.stderr.count("\n")) == (2, 1), staging.stderr

    what_if = json.loads(ok(remote("policy", "test", str(policy), "-o", "json")))
    assert sorted((r["image"], r["allowed"]) for r in what_if) == [
        (f"{host}/shop/app:signed", True),
        (f"{host}/shop/app:unsigned", False),
    ]
    # Nothing of it was decided or stored here.
    assert list(work.iterdir()) == []

    # The same failures exit alike on the database and through the server.
    db = tmp_path / "local.db"
    ok(run("registry", "add", "local", host, db=db))
    ok(run("index", "local", db=db))
    ok(run("policy", "apply", str(policy), db=db))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nimages: ['**']\nauthorities:\n  - name: a\n    keyless: {}\n")
    absent = f"{host}/shop/app@sha256:{'0' * 64}"
    pairs = {
        "bad reference": (("verify", "Not A Reference!", "--offline"), 2),
        "no such policy set": (("verify", f"{host}/shop/app:signed", "--policy-name", "nope"), 3),
        "unknown image, denied": (("verify", absent, "--offline"), 1),
        "bad policy name": (("policy", "apply", str(policy), "--name", "Prod!"), 2),
        "broken policy": (("policy", "apply", str(broken)), 2),
        "broken what-if": (("policy", "test", str(broken)), 2),
        "no such artifact": (("artifact", "show", "sha256:" + "1" * 64), 3),
        "no such registry": (("index", "absent"), 3),
    }
    seen = {}
    for what, (args, _) in pairs.items():
        local, served = run(*args, db=db), remote(*args)
        seen[what] = (local.returncode, served.returncode, local.stderr, served.stderr)
    assert {what: codes[:2] for what, codes in seen.items()} == {
        what: (code, code) for what, (_, code) in pairs.items()
    }, seen
    errors = [codes[3] for codes in seen.values() if codes[1] != 1]  # 1 is verify's "denied"
    assert all(e.startswith("xregistry: error: ") and e.count("\n") == 1 for e in errors), seen
    assert list(work.iterdir()) == []


def test_a_registry_down_behind_the_server_is_not_an_unreachable_server(
    server: str, tmp_path: Path
) -> None:
    """A server that answers UNAVAILABLE because a registry is down: exit 4, as on the
    database, not the 7 of a server nobody reaches."""
    down = f"127.0.0.1:{free_port()}"
    db = tmp_path / "local.db"
    for backend in ({"db": db}, {"server": server}):
        ok(run("registry", "add", "down", down, **backend))
        failed = run("index", "down", "-o", "json", **backend)
        assert failed.returncode == 4, (backend, failed.stderr)
        assert "cannot reach the xregistry server" not in failed.stderr


def test_every_command_given_an_undecodable_byte_fails_in_one_line(tmp_path: Path) -> None:
    """A command line's byte that is not UTF-8 (decoded as a lone surrogate) in every argument
    that is text: refused in one line with an exit code of the README's table, through a server
    (none listening: refused before, or unreachable) and on the database, never a traceback."""
    tree = commands(main)
    server = f"127.0.0.1:{free_port()}"
    bad = "x\udcff"

    def attempt(item: tuple[int, str]) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
        index, words = item
        cwd = tmp_path / words.replace(" ", "-")
        cwd.mkdir()
        given = cwd / "input.yaml"
        given.write_text('name: x\nimages: ["**"]\n')
        args = [*words.split(), *(bad if a == "x" else a for a in arguments(tree[words], given))]
        done = [(f"{words} --server", xregistry(args, cwd, server, by_env=index % 2 == 1))]
        local = dict(os.environ, XREGISTRY_DATABASE=f"sqlite:///{cwd / 'catalog.db'}")
        done.append(
            (
                words,
                subprocess.run(
                    [sys.executable, "-m", "catalog.cli.main", *args],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                    env={k: v for k, v in local.items() if k != "XREGISTRY_SERVER"},
                    cwd=cwd,
                ),
            )
        )
        return done

    # Not `serve` (it would serve) nor what reads no text argument.
    chosen = [
        words
        for words in sorted(tree)
        if words != "serve" and "x" in arguments(tree[words], tmp_path / "input.yaml")
    ]
    assert {"find", "registry remove", "tag history", "replicate rule add"} <= set(chosen)
    with ThreadPoolExecutor(4) as pool:
        results = [one for many in pool.map(attempt, enumerate(chosen)) for one in many]
    for words, done in results:
        assert "Traceback" not in done.stderr, (words, done.stderr)
        assert done.stderr.startswith("xregistry: error: "), (words, done.stderr)
        assert done.stderr.count("\n") == 1, (words, done.stderr)
        assert done.returncode in (2, 3, EXIT_UNREACHABLE), (words, done.returncode, done.stderr)
