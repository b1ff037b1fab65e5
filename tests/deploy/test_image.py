"""The built image, run for real (scripts/test-image builds it, then runs this with
$XREGISTRY_IMAGE and $XREGISTRY_BUILDAH set; skipped otherwise).

Its entrypoint runs under `buildah run` as the image says (user 10001, the data volume mounted,
the config and TLS files read-only) with the secure configuration an operator gives it: TLS and
a bearer token, PostgreSQL from $XREGISTRY_DATABASE_URL. The image's own `xregistry` then asks
for health, indexes a docker-registry on loopback and answers a CheckImage (`verify --server`);
nothing is written outside the volume; without a database URL the container refuses to start.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalog.oci.client import RegistryClient
from catalog.oci.manifest import Manifest
from tests.deploy._prune import excluded_modules, prune_venv
from tests.harness.images import build_image
from tests.harness.pki import make_ca, make_server_cert
from tests.harness.ports import free_port
from tests.harness.postgres import run_postgres
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built

IMAGE = os.environ.get("XREGISTRY_IMAGE", "")
BUILDAH = shlex.split(os.environ.get("XREGISTRY_BUILDAH", "buildah"))
UID = 10001
TOKEN = secrets.token_urlsafe(24)
pytestmark = pytest.mark.skipif(
    not IMAGE, reason="scripts/test-image builds the image and runs this"
)


def buildah(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BUILDAH, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def image_config() -> dict[str, Any]:
    """The image's Docker-format config (HEALTHCHECK exists only in that format)."""
    done = buildah("inspect", "--type", "image", IMAGE)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)["Docker"]["config"]
    return config


@dataclass
class Container:
    """A working container of the image, with the operator's mounts and environment."""

    name: str
    mounts: list[str]
    env: dict[str, str]

    def run_args(self, env: dict[str, str] | None = None) -> list[str]:
        args = [*BUILDAH, "run", "--isolation", "chroot"]
        for mount in self.mounts:
            args += ["-v", mount]
        for key, value in {**self.env, **(env or {})}.items():
            args += ["--env", f"{key}={value}"]
        return [*args, self.name, "--"]

    def run(
        self, command: Sequence[str], env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.run_args(env), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    done = buildah("from", "--quiet", IMAGE)
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip()
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, UID, UID)
    etc = tmp_path / "etc"
    (etc / "tls").mkdir(parents=True)
    try:
        yield Container(name, [f"{data}:/var/lib/xregistry", f"{etc}:/etc/xregistry:ro"], env={})
    finally:
        buildah("rm", name)


def write_config(etc: Path, port: int, health_port: int, registry: RunningRegistry) -> None:
    """TLS (a certificate naming localhost, its CA beside it) and a token: what `serve` needs
    off loopback, given here on loopback as well."""
    tls = etc / "tls"
    make_server_cert(tls, make_ca(tls), hosts=("localhost", "127.0.0.1"), stem="tls")  # + ca.crt
    for path in tls.iterdir():
        os.chown(path, UID, UID)
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    (etc / "config.yaml").write_text(
        f"""listen: 127.0.0.1:{port}
tls: {{cert_file: /etc/xregistry/tls/tls.crt, key_file: /etc/xregistry/tls/tls.key}}
auth:
  tokens: [{{name: ci, sha256: "{digest}"}}]
  bindings: [{{role: admin, principals: ["token:ci"]}}]
registries:
  - {{name: local, host: "{registry.host}", insecure: true}}
health: {{interval: 1s, listen: "127.0.0.1:{health_port}"}}
"""
    )
    # Images no policy matches are allowed (with a warning); this image matches none.
    (etc / "policy.yaml").write_text(
        """noMatch: allow
policies:
  - name: elsewhere
    images: ["registry.acme.io/**"]
    authorities: [{name: release, keyless: {issuer: "https://issuer.acme.io", subject: "ci"}}]
"""
    )


def test_the_image_is_what_it_says() -> None:
    config = image_config()
    assert config["User"] == f"{UID}:{UID}"
    assert "/var/lib/xregistry" in config["Volumes"]
    assert config["Entrypoint"] == ["xregistry"]
    assert config["Cmd"] == ["serve", "--config", "/etc/xregistry/config.yaml"]
    assert "XREGISTRY_DATABASE_URL=" in config["Env"]
    labels = config["Labels"]
    for key in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{key}" in labels
    assert labels["org.opencontainers.image.revision"] != ""
    assert config["Healthcheck"]["Test"][:3] == ["CMD", "xregistry", "health"]


def test_no_compiler_no_installer_no_source_tree(container: Container) -> None:
    done = container.run(
        [
            "/bin/sh",
            "-c",
            "for f in /src /app /opt/venv/bin/pip /usr/local/bin/pip /usr/bin/gcc /usr/bin/cc "
            "/usr/bin/ld /usr/bin/strip; do test -e $f && echo $f; done; "
            "python3 -m pip --version >/dev/null 2>&1 && echo pip; id -u",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(UID)]


# Runs in the image's venv: what scripts/prune-venv left is what the service runs on.
TRIMMED = """
import importlib, json, pathlib, pkgutil, sys, sysconfig
import catalog, replication
modules = 0
for package in (catalog, replication):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        modules += 1
present = []
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
        present.append(name)
    except ImportError:
        pass
import psycopg
site = pathlib.Path(sysconfig.get_path("purelib"))
own = json.loads(sys.argv[2])
sources = sorted({p.relative_to(site).parts[0] for p in site.rglob("*.py")})
print(json.dumps({"modules": modules, "present": present, "sources": sources,
                  "psycopg": psycopg.pq.__impl__, "libpq": psycopg.pq.version()}))
"""


def test_runs_on_the_trimmed_venv(container: Container) -> None:
    """Every module of the project imports; the distributions left out are absent; the
    dependencies are bytecode only while the project keeps its sources; psycopg is its Python
    implementation on the libpq the runtime stage installed."""
    own = list(prune_venv().OWN)
    done = container.run(
        [
            "/opt/venv/bin/python",
            "-c",
            TRIMMED,
            json.dumps(sorted(excluded_modules())),
            json.dumps(own),
        ]
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["modules"] > 100
    assert found["present"] == []
    assert found["sources"] == sorted(own)
    assert found["psycopg"] == "python"
    assert found["libpq"] >= 150000


def test_trusts_the_public_cas(container: Container) -> None:
    """Registries' TLS without --ca-file: OpenSSL finds the CA bundle the image carries."""
    stats = "import json, ssl; print(json.dumps(ssl.create_default_context().cert_store_stats()))"
    done = container.run(["python3", "-c", stats])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["x509_ca"] > 100


# Runs `xregistry health --help` in the image, then looks at the standard library it loaded.
STDLIB_BYTECODE = """
import contextlib, importlib.util, json, os, pathlib, sys, sysconfig
from catalog.cli.main import main
sys.argv = ["xregistry", "health", "--help"]
with contextlib.suppress(SystemExit):
    main()
stdlib = pathlib.Path(sysconfig.get_path("stdlib"))
# Frozen modules (os, site, codecs, …) are in the interpreter itself: never compiled.
loaded = sorted({m.__file__ for m in list(sys.modules.values())
                 if str(getattr(m, "__file__", None)).startswith(f"{stdlib}/")
                 and m.__file__.endswith(".py") and m.__spec__.origin != "frozen"})
missing = [f for f in loaded if not os.access(importlib.util.cache_from_source(f), os.R_OK)]
print(json.dumps({"loaded": len(loaded), "missing": missing,
                  "sources": sum(1 for _ in stdlib.rglob("*.py")),
                  "compiled": sum(1 for _ in stdlib.rglob("*.pyc"))}))
"""


def test_stdlib_bytecode_for_what_runs_only(container: Container) -> None:
    """The standard library modules a command loads have bytecode the runtime user can read
    (the root is read-only: without it every process compiles them again), and most of the
    standard library has none (the Dockerfile compiles only what the CLI and service import)."""
    done = container.run(["/opt/venv/bin/python", "-c", STDLIB_BYTECODE])
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])  # after the help
    assert found["loaded"] > 40
    assert found["missing"] == []
    assert found["compiled"] < found["sources"] / 2


def test_no_database_url_no_start(container: Container, tmp_path: Path) -> None:
    (tmp_path / "etc" / "config.yaml").write_text("listen: 127.0.0.1:0\n")
    done = container.run(["xregistry", "serve", "--config", "/etc/xregistry/config.yaml"])
    assert done.returncode == 2, done.stderr
    assert "$XREGISTRY_DATABASE_URL is empty" in done.stderr


async def push_one(host: str) -> Manifest:
    async with RegistryClient(host) as client:
        image = build_image(random.Random(7), layers=1, layer_size=512)
        return await push_built(client, "shop/app", image, "v1")


def test_serves_indexes_and_answers_a_check(
    container: Container, tmp_path: Path, fresh_registry: RunningRegistry
) -> None:
    pushed = asyncio.run(push_one(fresh_registry.host))
    port, health_port = free_port(), free_port()
    write_config(tmp_path / "etc", port, health_port, fresh_registry)
    password = secrets.token_urlsafe(12)
    with run_postgres(tmp_path, password=password) as pg:
        database = pg.create_database("xregistry").replace("postgresql+psycopg://", "postgresql://")
        config = image_config()
        marker = tmp_path / "marker"
        marker.touch()
        time.sleep(1.1)  # mtimes after the marker's are the run's
        serving = subprocess.Popen(
            [
                *container.run_args({"XREGISTRY_DATABASE_URL": database}),
                *config["Entrypoint"],
                *config["Cmd"],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        client_env = {"XREGISTRY_CA_FILE": "/etc/xregistry/tls/ca.crt", "XREGISTRY_TOKEN": TOKEN}
        server = f"localhost:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                health = container.run(["xregistry", "health", "--server", server], client_env)
                if health.returncode == 0:
                    break
                assert serving.poll() is None, serving.communicate()[0]
                assert time.monotonic() < deadline, health.stderr
                time.sleep(1)
            assert health.stdout == "SERVING\n"
            # The image's own HEALTHCHECK asks the plain-text health listener: no CA, no token.
            # Its port (50052) is the one picked here: the container shares the host's network.
            probe = container.run(
                [
                    arg.replace(":50052", f":{health_port}")
                    for arg in config["Healthcheck"]["Test"][1:]
                ]
            )
            assert probe.returncode == 0, probe.stderr
            assert probe.stdout == "SERVING\n"

            indexed = container.run(
                ["xregistry", "--server", server, "index", "local", "-o", "json"], client_env
            )
            assert indexed.returncode == 0, indexed.stderr
            applied = container.run(
                [
                    "xregistry",
                    *("--server", server, "policy", "apply", "/etc/xregistry/policy.yaml"),
                    *("--name", "default"),
                ],
                client_env,
            )
            assert applied.returncode == 0, applied.stderr
            verified = container.run(
                [
                    "xregistry",
                    "--server",
                    server,
                    "verify",
                    f"{fresh_registry.host}/shop/app:v1",
                    "-o",
                    "json",
                ],
                client_env,
            )
            assert verified.returncode == 0, verified.stderr  # allowed
            decision = json.loads(verified.stdout)
            assert decision["digest"] == str(pushed.digest)
            assert decision["allowed"] is True
        finally:
            serving.send_signal(signal.SIGTERM)
            try:
                log, _ = serving.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                serving.kill()
                log, _ = serving.communicate()
    assert password not in log
    assert "xregistry serving on port" in log
    # Read-only root: the run wrote nothing outside the volume.
    mounted = buildah("mount", container.name)
    assert mounted.returncode == 0, mounted.stderr
    root = Path(mounted.stdout.strip())
    try:
        written = subprocess.run(
            ["find", str(root), "-xdev", "-newer", str(marker), "-not", "-type", "d"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    finally:
        buildah("umount", container.name)
    assert [str(Path(p).relative_to(root)) for p in written] == []
