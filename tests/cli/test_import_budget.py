"""The import budget of the catalog commands (issue 16: commands that start in a blink).

Each command runs as a process, as users run it, and writes the modules it imported when it
exits; a command that pulls in what only another path needs (the indexer and its HTTP client,
Sigstore, Alembic on a current schema, the config models; with ``--server`` SQL as well) fails
here, naming the module, before anyone feels it in a pipeline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from catalog.store.db import HEAD_REVISION, alembic_config, make_engine
from tests.harness.registry import RunningRegistry

# Runs the CLI and writes sys.modules at exit (after the command, its output and its errors).
_PROBE = """
import atexit, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
from catalog.cli.main import main
main(sys.argv[1:], prog_name="xregistry")
"""

# Whatever a catalog query has no use for, locally or through a server.
NEVER = (
    "aiohttp",
    "sigstore",
    "alembic",
    "pydantic",
    "yaml",
    "catalog.index.crawler",
    "catalog.index.run",
    "catalog.oci.client",
    "catalog.gate.checker",  # the gate decides; a query or a policy list does not
    "catalog.trust.verify",
    "catalog.trust.roots",
    "catalog.trust._internal",
    "catalog.trust.policy.loading",  # a policy's parser: to apply one, not to list them
    "catalog.app.config",
    "replication.service",
)
# With --server nothing of the database either.
REMOTE_NEVER = (*NEVER, "sqlalchemy", "catalog.store.queries", "catalog.store.models")


def commands(host: str) -> dict[str, list[str]]:
    return {
        "registry list": ["registry", "list"],
        "find": ["find", "pkg:pypi/requests@2.31.0"],
        "artifact show": ["artifact", "show", f"{host}/shop/api:1.0"],
        "tag history": ["tag", "history", f"{host}/shop/api:1.0"],
        "policy list": ["policy", "list"],
    }


def imported(tmp_path: Path, args: list[str], env: dict[str, str]) -> set[str]:
    out = tmp_path / "modules.txt"
    subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    return set(out.read_text().split())


def forbidden(modules: set[str], never: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in never))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XREGISTRY_")}
    return {**env, **extra}


def test_local_catalog_commands_import_no_indexer_alembic_or_config(
    fresh_registry: RunningRegistry, tmp_path: Path
) -> None:
    env = _env(XREGISTRY_DATABASE=f"sqlite:///{tmp_path / 'catalog.db'}")
    add = ["registry", "add", "local", fresh_registry.host, "--insecure"]
    subprocess.run([sys.executable, "-m", "catalog.cli.main", *add], env=env, check=True)
    for name, args in commands(fresh_registry.host).items():
        modules = imported(tmp_path, args, env)
        assert "catalog.cli.output" in modules, name  # the command ran
        assert "sqlalchemy" in modules, name  # it opened the database
        assert forbidden(modules, NEVER) == [], name


def test_a_new_database_is_migrated_with_alembic(tmp_path: Path) -> None:
    # The other side of the budget: Alembic is there when there is something to migrate.
    env = _env(XREGISTRY_DATABASE=f"sqlite:///{tmp_path / 'new.db'}")
    assert "alembic" in imported(tmp_path, ["registry", "list"], env)


def test_server_catalog_commands_import_no_sql(
    server: str, fresh_registry: RunningRegistry, tmp_path: Path
) -> None:
    env = _env(XREGISTRY_SERVER=server)
    # A server decides: `verify` through it needs no gate here.
    verify = {"verify": ["verify", f"{fresh_registry.host}/shop/api:1.0"]}
    for name, args in {**commands(fresh_registry.host), **verify}.items():
        modules = imported(tmp_path, args, env)
        assert "grpc" in modules, name  # it asked the server
        assert forbidden(modules, REMOTE_NEVER) == [], name


def test_head_revision_is_alembics(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert ScriptDirectory.from_config(alembic_config(engine)).get_heads() == [HEAD_REVISION]
