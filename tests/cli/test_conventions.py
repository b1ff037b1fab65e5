"""The output conventions, checked mechanically on every command of the ``--help`` tree, on the
database and through a running ``xregistry serve``, on a small real catalog.

With ``--output json``: stdout is one JSON document and nothing else, its keys lowerCamelCase at
every depth, its times RFC 3339 in UTC with ``Z``, and stderr empty; a failure is one line
``xregistry: error: …`` on stderr, nothing on stdout, and exits as the README's table says, the
same code on the database and through the server, with JSON of the same shape. Piped (not a
terminal), tables are plain lines: no box drawing, no trailing blanks, digests whole, times RFC
3339. Commands are found by walking click's tree, so a command added later is run too (with
generated arguments) until it gets a realistic case here.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.cli.main import main
from catalog.cli.output import to_json, when_text
from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from tests.cli.test_server_option import arguments, commands
from tests.formats.fixtures import CONFORMANCE
from tests.harness.ports import free_port
from tests.harness.registry import RunningRegistry
from tests.harness.serve_process import ServeProcess
from tests.index.conftest import SPDX_PURL, Corpus, populate
from tests.signing import key_policy, push_signature
from tests.trust.verify_support import CONFORMANCE_IDENTITY, CONFORMANCE_ISSUER

# Commands the walk does not run, and why.
ALLOWLIST = {
    "serve": "it is the server: runs until stopped and prints logs, not a result",
    "health": "asks a server in both modes (there is no local answer: without --server it asks "
    "localhost:50051); its table, JSON and exit codes are tested in tests/daemon/test_readiness.py",
}

CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
# Anything a reader would take for a point in time, in any of the forms the issue met.
TIME_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}\S*")
TIME_KEY = re.compile(r".*(At|Time|Since)")
DIGEST_LIKE = re.compile(r"sha256:[0-9a-f]*")
EXIT_DENIED = 1  # verify's "denied", with the decision on stdout


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int = 0


@dataclass(frozen=True)
class Catalog:
    host: str
    corpus: Corpus
    policy: Path


def cases(catalog: Catalog) -> list[tuple[str, Case]]:
    """Each command with arguments that work on the catalog, in an order that builds it up
    (the same on the database and on the server), then failures both must exit alike."""
    host, slsa = catalog.host, catalog.corpus.slsa_index
    bundle, a_txt = CONFORMANCE / "happy-path-v0.2" / "bundle.sigstore.json", CONFORMANCE / "a.txt"
    identity = ("--certificate-identity", CONFORMANCE_IDENTITY)
    issuer = ("--certificate-oidc-issuer", CONFORMANCE_ISSUER)
    absent = "sha256:" + "1" * 64
    return [
        ("registry add", Case(("local", host))),
        ("registry add", Case(("mirror", host, "--repository", "copy/**", "--interval", "1h"))),
        ("index", Case(("local",))),
        ("index", Case(("mirror",))),
        ("registry list", Case(())),
        ("artifact show", Case((f"{host}/shop/api:1.0",))),
        ("artifact show", Case((f"{host}/slsa/app@{slsa}",))),
        ("find", Case((SPDX_PURL,))),
        ("tag history", Case((f"{host}/shop/api:1.1",))),
        ("inspect", Case((f"{host}/slsa/app:v1",))),
        ("policy apply", Case((str(catalog.policy),))),
        ("policy list", Case(())),
        ("policy test", Case((str(catalog.policy),))),
        ("verify", Case((f"{host}/shop/api:1.0", "--offline"))),
        ("verify", Case((f"{host}/shop/api:1.1", "--offline"), EXIT_DENIED)),
        ("replicate rule add", Case(("copy", "--from", "local/shop/api", "--to", "mirror/copy"))),
        ("replicate rule list", Case(())),
        ("replicate run", Case(("copy", "--wait"))),
        ("replicate status", Case(())),
        ("replicate status", Case(("copy", "--runs", "2"))),
        ("replicate once", Case(("--from", f"{host}/shop/api", "--to", f"{host}/once"))),
        ("audit", Case(())),
        ("trust verify-bundle", Case(("--bundle", str(bundle), *identity, *issuer, str(a_txt)))),
        ("trust verify-bundle", Case(("--bundle", str(bundle), *identity, *issuer, absent), 1)),
        ("replicate rule remove", Case(("copy",))),
        ("registry remove", Case(("mirror",))),
        # The same failure, the same code, whichever backend (README's table).
        ("registry add", Case(("local", host), 8)),
        ("registry add", Case(("Bad Name!", host), 2)),
        ("artifact show", Case((absent,), 3)),
        ("artifact show", Case(("Not A Reference!",), 2)),
        ("index", Case(("absent",), 3)),
        # A layout root of the secrets (both read the same file) whose layout is missing: not
        # found, which the server answers with FAILED_PRECONDITION and names as a LayoutError.
        ("registry add", Case(("gone", "oci:layouts/absent"))),
        ("index", Case(("gone",), 3)),
        ("find", Case((), 2)),
        ("find", Case(("--limit", "many"), 2)),
        ("find", Case((SPDX_PURL, "--limit", "0"), 2)),  # was read as "the default page"
        ("find", Case((SPDX_PURL, "--limit", "1001"), 2)),  # was cut to one page of 1,000
        ("registry list", Case(("--no-such-option",), 2)),
    ]


# -- the checks --------------------------------------------------------------------------------


def json_problems(value: Any, where: str = "$") -> Iterator[str]:
    """Keys not lowerCamelCase, times not RFC 3339 UTC, at every depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not CAMEL.fullmatch(key):
                yield f"{where}: key {key!r} is not lowerCamelCase"
            if TIME_KEY.fullmatch(key) and item is not None and not _is_time(item):
                yield f"{where}.{key}: {item!r} is not an RFC 3339 UTC time"
            yield from json_problems(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from json_problems(item, f"{where}[{n}]")
    elif isinstance(value, str) and TIME_LIKE.match(value) and not _is_time(value):
        yield f"{where}: {value!r} looks like a time but is not RFC 3339 UTC"


def _is_time(value: Any) -> bool:
    return isinstance(value, str) and RFC3339_UTC.fullmatch(value) is not None


def table_problems(text: str) -> Iterator[str]:
    """A piped table: plain lines, whole digests, RFC 3339 times."""
    for line in text.splitlines():
        if line != line.rstrip():
            yield f"trailing blanks: {line!r}"
        if re.search(r"[│┃━─┏┗┡└]", line):
            yield f"box drawing in a piped table: {line!r}"
        for digest in DIGEST_LIKE.findall(line):
            if len(digest) != len("sha256:") + 64:
                yield f"a cut digest {digest!r} in {line!r}"
        for stamp in TIME_LIKE.findall(line):
            if not RFC3339_UTC.fullmatch(stamp.rstrip(",;)")):
                yield f"time {stamp!r} is not RFC 3339 UTC in {line!r}"


# Maps keyed by data, not by field names: which keys they hold depends on what happened (a
# run's task outcomes: copied on one backend, skipped on the other that came second).
DATA_MAPS = {"outcomes"}


def shape(value: Any) -> Any:
    """The keys of ``value`` at every depth (a list: the union of its items' shapes); two
    backends answer with the same records when their shapes are equal."""
    if isinstance(value, dict):
        return {key: "map" if key in DATA_MAPS else shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            item_shape = shape(item)
            if isinstance(item_shape, dict):
                merged |= item_shape
        return [merged] if merged else []
    return "."


@dataclass(frozen=True)
class Outcome:
    words: str
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    table: str | None  # the same command in table mode (successful cases)


def check(outcome: Outcome, expected: int) -> list[str]:
    what = f"{outcome.words} {' '.join(outcome.args)}"
    problems: list[str] = []
    if outcome.code != expected:
        return [f"{what}: exit {outcome.code}, not {expected}: {outcome.stderr}"]
    if outcome.code in (0, EXIT_DENIED) and outcome.stdout:
        try:
            doc = json.loads(outcome.stdout)
        except ValueError:
            return [f"{what}: stdout is not one JSON document: {outcome.stdout[:300]!r}"]
        problems += [f"{what}: {p}" for p in json_problems(doc)]
        if outcome.stderr:
            problems.append(f"{what}: stderr beside the JSON: {outcome.stderr!r}")
    else:
        if outcome.stdout:
            problems.append(f"{what}: stdout on failure: {outcome.stdout!r}")
        if outcome.words == "trust verify-bundle":  # a result, not an error: "not verified"
            one_line = outcome.stderr.startswith("xregistry: not verified: ")
        else:
            one_line = outcome.stderr.startswith("xregistry: error: ")
        if not (one_line and outcome.stderr.count("\n") == 1):
            problems.append(f"{what}: not one error line on stderr: {outcome.stderr!r}")
    if outcome.table is not None:
        problems += [f"{what} (table): {p}" for p in table_problems(outcome.table)]
    return problems


# -- running it --------------------------------------------------------------------------------


def xregistry(
    args: list[str], *, db: Path | None = None, server: str | None = None
) -> tuple[int, str, str]:
    """``xregistry ARGS`` in this process (the machine is shared: a process each would take
    minutes): exit code, stdout, stderr. Stdout is not a terminal, as in a pipe."""
    if server:
        root = ["--server", server]
    else:
        assert db is not None
        root = ["--database", f"sqlite:///{db}", "--config", str(secrets_file(db.parent.parent))]
    runner = CliRunner(env={"XREGISTRY_SERVER": None, "XREGISTRY_DATABASE": None})
    result = runner.invoke(main, [*root, *args], prog_name="xregistry")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback would have reached the user
    return result.exit_code, result.stdout, result.stderr


def secrets_file(folder: Path) -> Path:
    """The secrets the server and the local command line share: a layout root."""
    path = folder / "secrets.yaml"
    if not path.exists():
        (folder / "layouts").mkdir()
        path.write_text(f"secrets:\n  layouts: [{{name: layouts, path: {folder / 'layouts'}}}]\n")
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """An empty catalog behind ``xregistry serve`` on a loopback port."""
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'served.db'}\n" + secrets_file(tmp_path).read_text()
    )
    serve = ServeProcess(config, tmp_path / "serve.log")
    serve.start()
    try:
        yield f"127.0.0.1:{serve.port}"
    finally:
        serve.stop()


@pytest.fixture
def catalog(fresh_registry: RunningRegistry, fixtures_dir: Path, tmp_path: Path) -> Catalog:
    """The index tests' corpus (SLSA provenance, signatures, SBOMs, an index), with shop/api:1.0
    also signed by a key a policy trusts."""
    key = ec.generate_private_key(ec.SECP256R1())

    async def fill() -> Corpus:
        corpus = await populate(fresh_registry.host, fixtures_dir, random.Random(12))
        async with RegistryClient(fresh_registry.host) as client:
            await push_signature(client, "shop/api", corpus.images["shop/api:1.0"], key)
        return corpus

    corpus = asyncio.run(fill())
    policy = tmp_path / "policy.yaml"
    policy.write_text(key_policy(fresh_registry.host, key))
    return Catalog(fresh_registry.host, corpus, policy)


def run_step(
    n: int, words: str, case: Case, *, db: Path | None = None, server: str | None = None
) -> Outcome:
    """One step with ``--output json`` (at the top level or the command's, by turns) and, when
    it succeeds and changes nothing, once more as a table."""
    argv = [*words.split(), *case.args]
    asked = ["-o", "json", *argv] if n % 2 else [*argv, "--output", "json"]
    code, stdout, stderr = xregistry(asked, db=db, server=server)
    table = None
    if code == 0 and words not in MUTATING:
        table = xregistry(argv, db=db, server=server)[1]
    return Outcome(words, case.args, code, stdout, stderr, table)


# Commands whose answers must be equal on both backends but for times (they ran on the same
# registry, in step).
SAME_VALUES = {"registry list", "index", "artifact show", "find", "tag history", "policy list"}


def timeless(value: Any) -> Any:
    """``value`` without its times (each backend indexed at its own moment)."""
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if not _is_time(v)}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def differences(mine: Any, theirs: Any, where: str = "$") -> Iterator[str]:
    """Where two answers differ: paths with the database's and the server's values."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in mine.keys() | theirs.keys():
            yield from differences(mine.get(key), theirs.get(key), f"{where}.{key}")
    elif isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for n, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            yield from differences(a, b, f"{where}[{n}]")
    elif mine != theirs:
        yield f"{where}: {mine!r} on the database, {theirs!r} through the server"


# Run once only: a second run, for the table, would change what they did.
MUTATING = {
    "registry add",
    "registry remove",
    "index",
    "policy apply",
    "replicate rule add",
    "replicate rule remove",
    "replicate run",
    "replicate once",
}


@pytest.mark.timeout(600)  # ~45 steps, each on two backends, most twice (JSON, table)
def test_every_command_follows_the_conventions_locally_and_through_a_server(
    catalog: Catalog, served: str, tmp_path: Path
) -> None:
    tree = commands(main)
    steps = cases(catalog)
    given = tmp_path / "input.yaml"
    given.write_text("name: x\n")
    # A command without a case here (one added later) still runs, with generated arguments:
    # it may fail, but as the conventions say.
    generated = {
        words: Case(tuple(arguments(command, given)), code=-1)
        for words, command in tree.items()
        if words not in ALLOWLIST and words not in {w for w, _ in steps}
    }
    steps += sorted(generated.items())
    assert set(ALLOWLIST) <= set(tree), "the allowlist names a command that is gone"

    db = tmp_path / "local" / "catalog.db"
    db.parent.mkdir()
    local: list[Outcome] = []
    remote: list[Outcome] = []
    for n, (words, case) in enumerate(steps):
        # In step: both backends see the registry as the same steps left it.
        local.append(run_step(n, words, case, db=db))
        remote.append(run_step(n, words, case, server=served))

    problems: list[str] = []
    for (words, case), here, there in zip(steps, local, remote, strict=True):
        expected = here.code if case.code == -1 else case.code
        for mode, outcome in (("local", here), ("--server", there)):
            problems += [f"[{mode}] {p}" for p in check(outcome, expected)]
        both_json = here.code in (0, EXIT_DENIED) and here.stdout and there.stdout
        if both_json and here.code == there.code:
            mine, theirs = json.loads(here.stdout), json.loads(there.stdout)
            if shape(mine) != shape(theirs):
                problems.append(f"{words}: JSON shapes differ: {shape(mine)} vs {shape(theirs)}")
            elif words in SAME_VALUES:
                problems += [f"{words}: {d}" for d in differences(timeless(mine), timeless(theirs))]
    assert not problems, "\n".join(problems)

    # What the cases were for: a digest found whole by grep in a piped table.
    shown = next(o for o in local if o.words == "artifact show" and o.table)
    assert shown.table is not None
    assert catalog.corpus.images["shop/api:1.0"] in shown.table.splitlines()[0]


def test_the_checks_catch_what_the_issue_met() -> None:
    """The walk's checks fail on the output the issue quoted (so a pass means something)."""
    met = {
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "observedAt": "2026-12-06 05:26:08.674637",
        "items": [{"seen": "2026-12-06T05:26:08"}],
        "integratedTime": 1711017244,
    }
    assert [p.split(":")[0] for p in json_problems(met)] == [
        "$",
        "$.observedAt",
        "$.observedAt",
        "$.items[0].seen",
        "$.integratedTime",
    ]
    folded = (
        "│ local    │ shop/api   │ 1.0  │ 2026-12-06 09:34:29.356422+00:00 │ sha256:3bd7b8c3b4 │"
    )
    assert len(list(table_problems(folded + "  "))) == 4  # blanks, box, digest, time
    assert shape({"a": [{"b": 1}, {"c": None}]}) == {"a": [{"b": ".", "c": "."}]}


def test_one_serializer_for_every_record() -> None:
    @dataclass(frozen=True)
    class Signature:
        log_index: int
        integrated_time: int
        signed_digests: tuple[str, ...]

    class Status(enum.StrEnum):
        COPIED = "copied"

    naive = datetime(2026, 12, 6, 5, 26, 8, 674637)
    value = {
        "last_index_at": naive,
        "signature": Signature(7, 1711017244, ("sha256:" + "a" * 64,)),
        "outcomes": {Status.COPIED: 2},
        "started": datetime(2026, 12, 6, 6, 26, 8, tzinfo=timezone(timedelta(hours=1))),
    }
    assert to_json(value) == {
        "lastIndexAt": "2026-12-06T05:26:08.674637Z",
        "signature": {
            "logIndex": 7,
            "integratedTime": "2024-03-21T10:34:04Z",
            "signedDigests": ["sha256:" + "a" * 64],
        },
        "outcomes": {"copied": 2},
        "started": "2026-12-06T05:26:08Z",
    }
    assert when_text(naive) == "2026-12-06T05:26:08Z"
    # A hand-written Value record (a digest) as its fields, like a dataclass it replaced.
    digest = Digest("sha256", "b" * 64)
    assert to_json({"manifest_digest": digest}) == {
        "manifestDigest": {"algorithm": "sha256", "hex": "b" * 64}
    }
    assert digest == mock.ANY  # the other side of == decides a comparison it knows


def test_a_database_that_cannot_be_opened_is_an_unreachable_catalog(tmp_path: Path) -> None:
    """Exit 7 and one line, as for a server nobody answers; never a traceback, nor the
    password of the URL."""
    port = free_port()  # nothing listens there
    for url in (
        f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}",
        f"postgresql://bob:s3cret-word@127.0.0.1:{port}/catalog",
        # libpq takes the password as a parameter too (and a client key's as sslpassword)
        f"postgresql://bob@127.0.0.1:{port}/catalog?password=s3cret-word&sslpassword=s3cret-word",
    ):
        for words in (["registry", "list"], ["audit"], ["policy", "list"], ["replicate", "status"]):
            result = CliRunner().invoke(main, ["--database", url, *words], prog_name="xregistry")
            assert result.exit_code == 7, (url, words, result.output, result.exception)
            assert result.stderr.startswith("xregistry: error: cannot open the database ")
            assert result.stderr.count("\n") == 1
            assert result.stdout == ""
            assert "s3cret-word" not in result.stderr


def test_a_postgresql_driver_that_cannot_load_is_an_unreachable_catalog(tmp_path: Path) -> None:
    """psycopg without its binary wheel needs the system's libpq: where it cannot load, exit 7
    with one line saying what to install, not an ImportError's traceback (PSYCOPG_IMPL=c asks
    for an implementation that is not installed, as a missing libpq would fail)."""
    env = dict(os.environ, PSYCOPG_IMPL="c", HOME=str(tmp_path))
    url = f"postgresql://bob:s3cret-word@127.0.0.1:{free_port()}/catalog"
    done = subprocess.run(
        [sys.executable, "-m", "catalog.cli.main", "--database", url, "registry", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 7, done.stderr
    assert done.stderr.startswith("xregistry: error: PostgreSQL needs libpq: install it")
    assert done.stderr.count("\n") == 1
    assert "s3cret-word" not in done.stderr
    assert done.stdout == ""
