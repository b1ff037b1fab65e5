"""Catalog commands' wall time beside the interpreter's own start-up, in one run.

A warm catalog (a real ``docker-registry`` with signed images and an SBOM, indexed into SQLite,
a stored policy set, one verification done) is asked by each catalog command ``--runs`` times as
a process, first on the database, then through ``--server`` (an ``xregistry serve`` process on
the same database). Beside them, in the same run: ``python -c pass`` (the floor no Python
command beats), ``xregistry --version``, and the stack's floor: a process that imports what
every local catalog command cannot start without (click, SQLAlchemy and its SQLite dialect;
the collector paused, as the CLI pauses it) and does nothing, which no local command beats.
Printed: the median and best wall time of each, its ratio to the 0.3 s budget (and a local
command's to the stack's floor, run just before each of its runs), the median CPU time (user +
system) of the process — on a shared machine wall time is mostly waiting for a core, CPU time the
command's own work — and, per command, the modules whose import costs most (``-X importtime``,
cumulative, top 5) — where the time goes.

Each runs with its bytecode cached, as an installed package has it (see ``bench._bytecode``).

Run: ``.venv/bin/python -m bench.commands [--runs 10]``. Needs ``docker-registry``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from bench._bytecode import installed_env
from catalog.oci.client import RegistryClient
from tests.harness.images import build_artifact, build_image
from tests.harness.ports import free_port
from tests.harness.registry import run_registry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

BUDGET = 0.3
XREGISTRY = [sys.executable, "-m", "catalog.cli.main"]
# What a local catalog command cannot start without, and nothing of ours (see the docstring).
STACK_FLOOR = [
    sys.executable,
    "-c",
    "import gc; gc.disable(); import click, sqlalchemy; sqlalchemy.create_engine('sqlite://')",
]


def commands(host: str) -> dict[str, list[str]]:
    image = f"{host}/shop/api:1.0"
    return {
        "registry list": ["registry", "list"],
        "find": ["find", "pkg:pypi/requests@2.31.0"],
        "artifact show": ["artifact", "show", image],
        "tag history": ["tag", "history", image],
        "verify (warm)": ["verify", image],
        "policy list": ["policy", "list"],
    }


async def populate(host: str) -> str:
    """Five signed images with an SBOM each; returns a policy set allowing them."""
    rng = random.Random(11)
    key = ec.generate_private_key(ec.SECP256R1())
    sbom_body = (
        b'{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"api","packages":['
        b'{"SPDXID":"SPDXRef-p","name":"requests","versionInfo":"2.31.0","externalRefs":['
        b'{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl",'
        b'"referenceLocator":"pkg:pypi/requests@2.31.0"}]}]}'
    )
    async with RegistryClient(host) as client:
        for n in range(5):
            image = build_image(rng, layers=1)
            await push_built(client, "shop/api", image, f"1.{n}" if n else "1.0")
            await push_signature(client, "shop/api", image.digest, key)
            sbom = build_artifact(image, "application/spdx+json", sbom_body, "text/spdx+json")
            await push_built(client, "shop/api", sbom)
    return key_policy(host, key)


def run(args: list[str], env: dict[str, str], *, check: bool = True) -> float:
    return timed(args, env, check=check)[0]


def timed(args: list[str], env: dict[str, str], *, check: bool = True) -> tuple[float, float]:
    """The command's wall time and CPU time (user + system), as a process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return took, cpu


def imports(args: list[str], env: dict[str, str]) -> list[tuple[float, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args[1:]], env=env, capture_output=True, check=False
    )
    found = []
    for line in done.stderr.decode().splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(2)) <= 3:  # top-level imports only: cumulative, not double counted
            found.append((int(m.group(1)) / 1e6, m.group(3)))
    return sorted(found, reverse=True)[:5]


def report(name: str, runs: list[tuple[float, float]], floor: float | None = None) -> None:
    """Prints a row; with ``floor``, the median's ratio to it too."""
    times = [wall for wall, _ in runs]
    median, best = statistics.median(times), min(times)
    cpu = statistics.median(cpu for _, cpu in runs)
    over = f"{median / floor:>9.2f}" if floor else f"{'':>9}"
    print(f"{name:<28} {median:>7.3f} {best:>7.3f} {median / BUDGET:>9.2f} {over} {cpu:>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as tmp:
        work = Path(tmp)
        os.chdir(work)
        with run_registry(work) as registry:
            Path("policy.yaml").write_text(asyncio.run(populate(registry.host)))
            env = installed_env(
                {k: v for k, v in os.environ.items() if not k.startswith("XREGISTRY_")}
            )
            env["XREGISTRY_DATABASE"] = f"sqlite:///{work / 'catalog.db'}"
            for setup in (
                ["registry", "add", "local", registry.host, "--insecure"],
                ["index", "local"],
                ["policy", "apply", "policy.yaml", "--name", "default"],
                ["verify", f"{registry.host}/shop/api:1.0"],
            ):
                run([*XREGISTRY, *setup], env)
            port = free_port()
            Path("serve.yaml").write_text(
                f"database: sqlite:///{work / 'catalog.db'}\nlisten: 127.0.0.1:{port}\n"
            )
            server = subprocess.Popen(
                [*XREGISTRY, "serve", "--config", "serve.yaml"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                remote = dict(env, XREGISTRY_SERVER=f"127.0.0.1:{port}")
                remote.pop("XREGISTRY_DATABASE")
                deadline = time.monotonic() + 30
                probe = [*XREGISTRY, "policy", "list"]
                while subprocess.run(probe, env=remote, capture_output=True).returncode != 0:
                    if time.monotonic() > deadline:
                        raise SystemExit("serve did not answer within 30 s")
                    time.sleep(0.2)
                load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"{options.runs} runs each; seconds of wall time; load average {load}")
                print(
                    f"{'command':<28} {'median':>7} {'best':>7} {'÷ 0.3 s':>9} {'÷ stack':>9}"
                    f" {'cpu':>7}"
                )
                bare = [timed([sys.executable, "-c", "pass"], env) for _ in range(options.runs)]
                report("python -c pass", bare)
                report(
                    "xregistry --version",
                    [timed([*XREGISTRY, "--version"], env) for _ in range(options.runs)],
                )
                stacks: list[tuple[float, float]] = []  # every local command's own floor runs
                rows: list[tuple[str, list[tuple[float, float]], float | None]] = []
                profiles = {}
                for where, where_env in (("", env), (" --server", remote)):
                    for name, args in commands(registry.host).items():
                        runs, floors = [], []
                        for _ in range(options.runs):
                            if not where:  # each run beside a floor run: the same load
                                floors.append(timed(STACK_FLOOR, env))
                            runs.append(timed([*XREGISTRY, *args], where_env))
                        stacks += floors
                        stack = statistics.median(w for w, _ in floors) if floors else None
                        rows.append((name + where, runs, stack))
                        profiles[name + where] = imports([*XREGISTRY, *args], where_env)
                report("sqlalchemy + click", stacks)
                for row in rows:
                    report(*row)
                load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"load average after: {load}")
                print("\nwhere the time goes: the costliest top-level imports (cumulative s)")
                for name, found in profiles.items():
                    print(f"{name}: " + ", ".join(f"{m} {s:.3f}" for s, m in found))
            finally:
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    main()
