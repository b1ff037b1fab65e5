"""The import budget of the catalog commands (issue 16: commands that start in a blink).

Each command runs as a process, as users run it, and writes the modules it imported when it
exits; a command that pulls in what only another path needs (the indexer and its HTTP client,
Sigstore, Alembic on a current schema, the config models; the ORM for a command that only
reads; with ``--server`` SQL as well) fails here, naming the module, before anyone feels it in
a pipeline.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from catalog.oci.client import RegistryClient
from catalog.store import views
from catalog.store.db import HEAD_REVISION, alembic_config, make_engine
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

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
# A command that only reads runs Core queries on a connection: no ORM, no mappers to configure.
READ_NEVER = (
    *NEVER,
    "sqlalchemy.orm",
    "catalog.store.models",
    "catalog.store.registries",
    "catalog.app.catalog_service",
    "catalog.gate",
)
# A verify the catalog can answer asks no registry: neither the indexer nor an HTTP client. It
# verifies nothing either (the results are stored: no Sigstore, no cryptography), compiles the
# stored policy set from its canonical JSON (no pydantic, no YAML) and reads in Core (no ORM),
# on its own thread (no worker threads), and needs no secrets.
WARM_VERIFY_NEVER = (
    "aiohttp",
    "alembic",
    "catalog.index.live",
    "catalog.index.crawler",
    "catalog.oci.client",
    "catalog.app.config",
    "catalog.app.trust_config",
    "replication.service",
    "sigstore",
    "sigstore_models",
    "cryptography",
    "pydantic",
    "yaml",
    "sqlalchemy.orm",
    "catalog.store.models",
    "catalog.trust.verify",
    "catalog.trust._internal.keys",
    "catalog.trust._internal.sigstore_parsed",  # a root's logs and CAs: to verify, not to judge
    "catalog.trust.policy.loading",
    "catalog.trust.policy.model",
    "catalog.oci.secrets",  # the user's secrets: read only if a registry is asked
    "catalog.store.audit",  # the audit's writers: a policy applied, not a decision
    "concurrent.futures.thread",  # the store's work inline: the command is its only caller
)
# With --server nothing of the database either.
REMOTE_NEVER = (*NEVER, "sqlalchemy", "catalog.store.queries", "catalog.store.models")


# The record families (catalog/store/views.py) each command may create: only those it shows (a
# frozen dataclass costs ~4.5M instructions to create at import); none for what it did not find.
RECORDS = {
    "registry list": {"_registry_views"},
    "find": {"_package_views"},
    # its image's registry, by host, when the catalog does not hold it
    "artifact show": {"_artifact_views", "_package_views", "_provenance_views", "_registry_views"},
    "tag history": {"_registry_views", "_tag_event_views"},  # its image's registry, by host
    "policy list": {"_policy_views"},
}


def records(modules: set[str]) -> set[str]:
    """The record modules catalog.store.views loaded among ``modules``."""
    classes = [getattr(views, name) for name in views.__all__]
    homes = {c.__module__ for c in classes if isinstance(c, type)} - {views.__name__}
    return {m.removeprefix("catalog.store.") for m in modules & homes}


def commands(host: str) -> dict[str, list[str]]:
    return {
        "registry list": ["registry", "list"],
        "find": ["find", "pkg:pypi/requests@2.31.0"],
        "artifact show": ["artifact", "show", f"{host}/shop/api:1.0"],
        "tag history": ["tag", "history", f"{host}/shop/api:1.0"],
        "policy list": ["policy", "list"],
    }


def probe(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules the command imported, and how it ended."""
    out = tmp_path / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return set(out.read_text().split()), done


def imported(tmp_path: Path, args: list[str], env: dict[str, str]) -> set[str]:
    return probe(tmp_path, args, env)[0]


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
        assert forbidden(modules, READ_NEVER) == [], name
        assert records(modules) <= RECORDS[name], name
        # packageurl parses the purl `find` asks for; the other commands have none.
        assert ("packageurl" in modules) == (name == "find"), name


def test_a_warm_verify_asks_no_registry_and_decides_as_a_cold_one(
    fresh_registry: RunningRegistry, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())

    async def push() -> str:
        async with RegistryClient(fresh_registry.host) as client:
            image = build_image(random.Random(16), layers=1)
            await push_built(client, "shop/api", image, "1.0")
            await push_signature(client, "shop/api", image.digest, key)
            return image.digest

    image = f"{fresh_registry.host}/shop/api@{asyncio.run(push())}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(key_policy(fresh_registry.host, key))
    env = _env(XREGISTRY_DATABASE=f"sqlite:///{tmp_path / 'catalog.db'}")
    for setup in (
        ["registry", "add", "local", fresh_registry.host, "--insecure"],
        ["policy", "apply", str(policy), "--name", "default"],
    ):
        subprocess.run([sys.executable, "-m", "catalog.cli.main", *setup], env=env, check=True)
    verify = ["verify", image, "--output", "json"]
    # Cold: the catalog has never seen the image; its signature is fetched from the registry.
    cold_modules, cold = probe(tmp_path, verify, env)
    assert cold.returncode == 0, cold.stderr
    assert "catalog.index.live" in cold_modules
    assert "aiohttp" in cold_modules
    # Warm: the same decision from what the catalog now holds, no registry asked.
    warm_modules, warm = probe(tmp_path, verify, env)
    assert warm.returncode == 0, warm.stderr
    assert forbidden(warm_modules, WARM_VERIFY_NEVER) == []
    # The policy set's record and the provenance facts' (catalog/store/views.py), no other.
    assert records(warm_modules) == {"_policy_views", "_provenance_views"}
    decided = json.loads(warm.stdout)
    assert decided == json.loads(cold.stdout)
    assert decided["allowed"]
    assert decided["evidence"][0]["method"] == "key"


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


def test_the_interpreter_starts_without_the_projects_import_hook() -> None:
    # scripts/bootstrap installs the project editable as a plain path: setuptools' default
    # editable finder imports pathlib, re and urllib into every process before its first line
    # (~10 ms on each command). Run from a venv made otherwise, this names what to re-make.
    started = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    hooks = [m for m in started if m.startswith("__editable__")]
    assert hooks == [], f"{hooks}: re-make the venv with scripts/bootstrap"
    assert "pathlib" not in started
