"""Replication speed beside ``skopeo sync`` (Debian's 1.9.3), on the same source, in one run.

Corpus S: 30 images of 3 layers (one base layer shared by all), ~90 MB.
Corpus L: 300 images, every third a two-platform index, each with a cosign ``.sig`` signature and
an SPDX SBOM referrer (fallback index), ~600 MB.

For each corpus: a first sync into a fresh destination and a no-change re-sync, then both again
into fresh destinations behind a proxy that delays every request by 40 ms (a far-away region).
Ours and skopeo's each get their own destination registry; both run as processes
(``replicate once`` and ``skopeo sync --src yaml --dest docker --all``), and the ratio compares
them. Beside them, the same runs inside this process, without the interpreter's start-up: the
engine alone (a third destination), and a stored rule run as ``xregistry serve`` runs it (a
fourth): the run and its tasks in SQLite, claimed and executed by a worker. Afterwards every
source tag is compared with each destination: how many digests changed on the way.

Last, throughput: one large blob copied by the replication engine, beside curl downloading and
uploading the same bytes (``curl GET | curl PUT``, streamed, and GET to memory then PUT).

``--resync-only`` measures just the no-change re-sync as processes, ours beside skopeo, ``--rounds``
times (after one first sync each; then again ``--latency`` away unless it is 0), wall and CPU
time (and the CPU time the source and destination registries spend serving each: on a 2-core
machine theirs and ours share the cores), and with ``--baseline DIR`` also ours from another
source tree (e.g. a ``git worktree add --detach`` of the base commit), so a change is compared in
one run. Beside them, the floor: a
process that only imports what ours cannot start without (the interpreter, click, asyncio and the
TLS it brings); and the limit: a process that starts as the floor does, then makes ours' requests
and nothing else (``bench/_resync_limit.py``), what the registries' answers cost on this machine.
``--instructions`` adds each one's instruction count
(callgrind), which the machine's load does not change. Our processes run with their
bytecode cached (``PYTHONPYCACHEPREFIX``, warmed first), as an installed package has it, even
where ``PYTHONDONTWRITEBYTECODE`` is set.

Run: ``.venv/bin/python -m bench.replicate [--scale 0.1] [--corpus S,L] [--latency 0.04]``
(``--scale`` multiplies the number of images; their sizes stay). Needs ``docker-registry``,
``skopeo`` and ``curl``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec

from bench._bytecode import installed_env
from catalog.oci import mediatypes as mt
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec, create_registry
from replication.engine import DEFAULT_PARALLEL, replicate
from replication.rules import Rewrite, Rule
from replication.service import ReplicationService
from replication.spec import RuleSpec
from replication.worker import Worker
from tests.harness.faultproxy import run_proxy
from tests.harness.images import Blob, BuiltManifest, build_artifact, build_index, serialize
from tests.harness.processes import process_cpu
from tests.harness.registry import run_registry
from tests.pushing import push_built
from tests.signing import push_signature

MiB = 1024 * 1024
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PREFIX = "mirror"
# Ours as a process, like skopeo: the `xregistry` entry point, as the console script runs it.
OURS = "from catalog.cli.main import main; main(prog_name='xregistry')"
# The floor of any process of ours: the interpreter and what the CLI cannot start without (click,
# asyncio for the engine and its HTTP, which brings TLS), nothing of ours. (Until issue 16's
# fourth session it held http.client and the thread pool too, which `replicate once` then used.)
FLOOR = [sys.executable, "-c", "import asyncio, click"]
# The limit of a no-change re-sync: the floor, then ours' requests and nothing else.
LIMIT = [sys.executable, str(Path(__file__).with_name("_resync_limit.py"))]


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    name: str
    repos: int
    tags: int  # per repository
    base_size: int  # one layer every image starts with
    layer_size: int  # each image's own layers (two per platform image)
    index_every: int  # every n-th tag of a repository is a two-platform index (0: never)
    attachments: bool  # a cosign signature and an SBOM referrer per image

    def scaled(self, scale: float) -> CorpusSpec:
        repos = max(1, round(self.repos * scale))
        return CorpusSpec(
            self.name,
            repos,
            self.tags,
            self.base_size,
            self.layer_size,
            self.index_every,
            self.attachments,
        )

    @property
    def images(self) -> int:
        return self.repos * self.tags

    def repository(self, r: int) -> str:
        # Distinct last components: skopeo names destinations after them.
        return f"bench-{self.name.lower()}/{self.name.lower()}{r:03d}"


CORPORA = {
    "S": CorpusSpec("S", 10, 3, 12 * MiB, int(1.3 * MiB), 0, False),
    "L": CorpusSpec("L", 100, 3, 8 * MiB, int(0.72 * MiB), 3, True),
}


class LayerSource:
    """Distinct layers cut from one buffer of random bytes: fast to make, never repeated."""

    def __init__(self, size: int = 64 * MiB) -> None:
        self.pool = os.urandom(size)
        self.made = 0

    def layer(self, size: int) -> Blob:
        start = (self.made * 4099) % (len(self.pool) - size)
        self.made += 1
        # A real gzip stream (stored blocks: no compression work), as a layer media type
        # promises: skopeo re-compresses layers it sniffs as uncompressed.
        return Blob.of(LAYER, gzip.compress(self.pool[start : start + size], 0, mtime=0))


def image(layers: list[Blob], n: int, arch: str = "amd64") -> BuiltManifest:
    config = Blob.of(
        mt.OCI_CONFIG,
        serialize(
            {
                "architecture": arch,
                "os": "linux",
                "created": f"2025-01-01T00:00:{n % 60:02d}Z",
                "rootfs": {"type": "layers", "diff_ids": [b.digest for b in layers]},
            }
        ),
    )
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layers],
    }
    raw = serialize(doc)
    platform = {"architecture": arch, "os": "linux"}
    return BuiltManifest(
        mt.OCI_MANIFEST,
        raw,
        Blob.of(mt.OCI_MANIFEST, raw).digest,
        len(raw),
        [config, *layers],
        [],
        platform,
    )


async def seed(host: str, spec: CorpusSpec, layers: LayerSource) -> int:
    """Push the corpus; returns its size in bytes (each blob once)."""
    key = ec.generate_private_key(ec.SECP256R1())
    base = layers.layer(spec.base_size)
    total = base.size
    limit = asyncio.Semaphore(8)

    def platform_image(n: int, arch: str = "amd64") -> BuiltManifest:
        nonlocal total
        own = [layers.layer(spec.layer_size) for _ in range(2)]
        total += sum(b.size for b in own)
        return image([base, *own], n, arch)

    async with RegistryClient(host) as client:

        async def one(r: int, t: int) -> None:
            n = r * spec.tags + t
            if spec.index_every and t % spec.index_every == spec.index_every - 1:
                built = build_index([platform_image(n), platform_image(n, "arm64")])
            else:
                built = platform_image(n)
            repository = spec.repository(r)
            async with limit:
                await push_built(client, repository, built, f"1.{t}")
                if spec.attachments:
                    await push_signature(client, repository, built.digest, key)
                    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": repository}).encode()
                    referrer = build_artifact(
                        built, "application/spdx+json", sbom, "text/spdx+json"
                    )
                    await push_built(client, repository, referrer)

        # Tags of one repository one after the other: their SBOMs share no fallback index, and
        # the registry has no conditional PUT to merge concurrent writers.
        async def repo(r: int) -> None:
            for t in range(spec.tags):
                await one(r, t)

        await asyncio.gather(*(repo(r) for r in range(spec.repos)))
    return total


def ours_env(tree: Path | None = None) -> dict[str, str]:
    """Our processes' environment: bytecode cached (see bench._bytecode), from ``tree``."""
    return installed_env(tree=tree)


def warm(tree: Path | None = None) -> None:
    """Compile what `replicate once` imports, before anything is timed."""
    warming = [sys.executable, "-c", "import catalog.cli.main, catalog.cli.replicate"]
    subprocess.run(warming, env=ours_env(tree), check=True, cwd=tree)


def run_ours(source: str, destination: str, tree: Path | None = None) -> Timing:
    """``xregistry replicate once``; from source ``tree`` when given (else this one's)."""
    command = ours_command(source, destination)
    return timed(
        command, check_json=True, env=ours_env(tree), cwd=tree, hosts=(source, destination)
    )


def run_limit(source: str, destination: str) -> Timing:
    """What the registries' answers to ours' requests take, asked by a process that only asks
    (``bench/_resync_limit.py``): no client of ours can re-sync faster on this machine. For a
    corpus without attachments: ours asks each image's referrers too, the limit once."""
    command = [*LIMIT, source, f"{destination}/{PREFIX}", str(DEFAULT_PARALLEL)]
    return timed(command, env=ours_env(), hosts=(source, destination))


def ours_command(source: str, destination: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        OURS,
        "replicate",
        "once",
        "--from",
        source,
        "--to",
        f"{destination}/{PREFIX}",
        "--output",
        "json",
    ]


def instructions(
    command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Instructions ``command`` executes (callgrind): what the load of others does not change."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=cwd,
    )
    return int(out.stderr.rsplit("Collected : ", 1)[1].split()[0])


def run_skopeo(config: Path, destination: str) -> Timing:
    return timed(
        [
            "skopeo",
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
            "--all",
            str(config),
            f"{destination}/{PREFIX}",
        ],
        hosts=(_source_host(config), destination),
    )


def _source_host(config: Path) -> str:
    """The source registry a ``skopeo sync`` configuration (:func:`skopeo_config`) names."""
    return config.read_text().split(":\n", 1)[0]


class Timing(NamedTuple):
    """A process's wall time, and its CPU time (user + system): on a machine shared with
    others' work the CPU time says more about the work each side does. ``registries``: the
    CPU time the source and destination registries spent meanwhile (serving it): on a
    2-core machine their work and ours share the cores, and a no-change re-sync asks them
    as much as it computes itself."""

    wall: float
    cpu: float
    registries: float = 0.0


# Host as the runs name it → the pid of the registry process serving it (proxied or not).
REGISTRY_PIDS: dict[str, int] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _registries_cpu(hosts: tuple[str, ...]) -> float:
    """CPU seconds (user + system) the registries serving ``hosts`` have spent so far."""
    return sum(process_cpu(REGISTRY_PIDS[host]) for host in hosts if host in REGISTRY_PIDS)


def timed(
    command: list[str],
    check_json: bool = False,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    hosts: tuple[str, ...] = (),
) -> Timing:
    """``command``'s wall and CPU time, and that of the registries serving ``hosts``; run in
    ``cwd`` when given (``python -c`` puts its working directory first on ``sys.path``: a
    baseline tree's code only runs from inside it)."""
    started, cpu, served = time.perf_counter(), _children_cpu(), _registries_cpu(hosts)
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, cwd=cwd)
    seconds = time.perf_counter() - started
    served = _registries_cpu(hosts) - served
    if done.returncode != 0:
        output = f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        sys.exit(f"{command[0]} failed ({done.returncode}):\n{output}")
    if check_json:
        report = json.loads(done.stdout)
        if report["errors"]:
            sys.exit(f"replication reported errors: {report['errors'][:3]}")
    return Timing(seconds, _children_cpu() - cpu, served)


def skopeo_config(workdir: Path, source: str, spec: CorpusSpec) -> Path:
    path = workdir / f"sync-{spec.name}.yaml"
    images = "\n".join(f"    {spec.repository(r)}: []" for r in range(spec.repos))
    path.write_text(f"{source}:\n  tls-verify: false\n  images:\n{images}\n")
    return path


async def changed_digests(
    source: str, destination: str, spec: CorpusSpec, skopeo: bool
) -> tuple[int, int]:
    """(tags whose digest differs at the destination, source tags)."""
    changed = compared = 0
    async with RegistryClient(source) as src, RegistryClient(destination) as dst:
        for r in range(spec.repos):
            repository = spec.repository(r)
            target = f"{PREFIX}/{repository.rsplit('/', 1)[1] if skopeo else repository}"
            async for tag in src.tags(repository):
                ours = await src.head_manifest(repository, tag)
                theirs = await dst.head_manifest(target, tag)
                compared += 1
                changed += ours is None or theirs is None or ours.digest != theirs.digest
    return changed, compared


@contextmanager
def destination(workdir: Path, latency: float) -> Iterator[str]:
    """A fresh registry; behind a delaying proxy when ``latency`` is set."""
    with ExitStack() as stack:
        registry = stack.enter_context(run_registry(workdir))
        REGISTRY_PIDS[registry.host] = registry.process.pid
        if not latency:
            yield registry.host
            return
        proxy = stack.enter_context(run_proxy(registry.url))
        proxy.latency = latency
        REGISTRY_PIDS[proxy.host] = registry.process.pid
        yield proxy.host


def row(corpus: str, step: str, ours: float, skopeo: float, engine: float, stored: float) -> None:
    times = f"ours {ours:5.2f} s  skopeo {skopeo:5.2f} s  ratio {ours / skopeo:.2f}"
    inside = f"engine {engine:5.2f} s ({engine / skopeo:.2f})"
    served = f"stored rule {stored:5.2f} s ({stored / skopeo:.2f})"
    print(f"{corpus:<2} {step:<25} {times} | {inside}  {served}", flush=True)


def corpus_bench(spec: CorpusSpec, workdir: Path, layers: LayerSource, latency: float) -> None:
    with run_registry(workdir) as source:
        started = time.perf_counter()
        size = asyncio.run(seed(source.host, spec, layers))
        print(
            f"corpus {spec.name}: {spec.images} images in {spec.repos} repositories, "
            f"{size / MiB:.0f} MiB, seeded in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        config = skopeo_config(workdir, source.host, spec)
        for delay in (0.0, latency):
            where = f" +{delay * 1000:.0f} ms" if delay else ""
            with (
                destination(workdir, delay) as ours_dst,
                destination(workdir, delay) as their_dst,
                destination(workdir, delay) as engine_dst,
                destination(workdir, delay) as stored_dst,
            ):
                stored = StoredRule(workdir, source.host, stored_dst)
                for step in (f"first sync{where}", f"no-change re-sync{where}"):
                    ours = run_ours(source.host, ours_dst).wall
                    skopeo = run_skopeo(config, their_dst).wall
                    engine = run_engine(source.host, engine_dst)
                    row(spec.name, step, ours, skopeo, engine, stored.run())
                if not delay:
                    ours_changed, n = asyncio.run(
                        changed_digests(source.host, ours_dst, spec, False)
                    )
                    their_changed, _ = asyncio.run(
                        changed_digests(source.host, their_dst, spec, True)
                    )
                    print(
                        f"{spec.name:<3} digests changed on the way: ours {ours_changed}/{n}, "
                        f"skopeo {their_changed}/{n}",
                        flush=True,
                    )


def resync_bench(
    spec: CorpusSpec,
    workdir: Path,
    layers: LayerSource,
    rounds: int,
    baseline: Path | None,
    latency: float,
    count_instructions: bool = False,
) -> None:
    """The no-change re-sync alone, as processes: ours (and the baseline tree's) beside skopeo,
    ``rounds`` times after one first sync each, every round's figures and the medians; then
    again into destinations ``latency`` seconds away (when not 0). With
    ``count_instructions``, one more re-sync of ours (and the baseline's) under callgrind,
    beside ``python -c pass``."""
    with run_registry(workdir) as source:
        REGISTRY_PIDS[source.host] = source.process.pid
        asyncio.run(seed(source.host, spec, layers))
        config = skopeo_config(workdir, source.host, spec)
        for delay in (0.0, latency) if latency else (0.0,):
            where = f" +{delay * 1000:.0f} ms" if delay else ""
            with (
                destination(workdir, delay) as ours_dst,
                destination(workdir, delay) as their_dst,
                destination(workdir, delay) as base_dst,
            ):
                run_ours(source.host, ours_dst)
                run_skopeo(config, their_dst)
                if baseline is not None:
                    run_ours(source.host, base_dst, baseline)
                figures: dict[str, list[Timing]] = {
                    "ours": [],
                    "skopeo": [],
                    "baseline": [],
                    "floor": [],
                    "limit": [],
                }
                for n in range(rounds):
                    load = os.getloadavg()[0]
                    figures["ours"].append(run_ours(source.host, ours_dst))
                    figures["skopeo"].append(run_skopeo(config, their_dst))
                    figures["floor"].append(timed(FLOOR, env=ours_env()))
                    if not spec.attachments:  # the limit asks no referrers (see run_limit)
                        figures["limit"].append(run_limit(source.host, ours_dst))
                    if baseline is not None:
                        figures["baseline"].append(run_ours(source.host, base_dst, baseline))
                    print(f"{spec.name}{where} round {n + 1} (load {load:.2f}):", flush=True)
                    _print_ratios({k: v[-1] for k, v in figures.items() if v})
                print(
                    f"{spec.name} no-change re-sync{where}, {spec.images} images, median of "
                    f"{rounds} (load {os.getloadavg()[0]:.2f} at the end):",
                    flush=True,
                )
                _print_ratios({k: _median(v) for k, v in figures.items() if v})
                if count_instructions and not delay:
                    trees = {"ours": None, "baseline": baseline} if baseline else {"ours": None}
                    counts = {
                        "python -c pass": instructions([sys.executable, "-c", "pass"]),
                        "floor": instructions(FLOOR, ours_env()),
                    }
                    for name, tree in trees.items():
                        dst = base_dst if tree is not None else ours_dst
                        command = ours_command(source.host, dst)
                        counts[name] = instructions(command, ours_env(tree), tree)
                    print(f"{spec.name} no-change re-sync, instructions (callgrind):", flush=True)
                    for name, count in counts.items():
                        print(f"    {name:<15} {count / 1e6:8.1f} M", flush=True)


def _median(timings: list[Timing]) -> Timing:
    """Wall and CPU time each the median of its own."""
    middle = len(timings) // 2
    return Timing(*(sorted(getattr(t, f) for t in timings)[middle] for f in Timing._fields))


def _print_ratios(timings: dict[str, Timing]) -> None:
    skopeo = timings["skopeo"]
    for name, t in timings.items():
        served = f"  registries' cpu {t.registries:6.3f} s" if name != "floor" else ""
        print(
            f"    {name:<9} wall {t.wall:6.3f} s ({t.wall / skopeo.wall:4.2f} of skopeo's)  "
            f"cpu {t.cpu:6.3f} s ({t.cpu / skopeo.cpu:4.2f} of skopeo's){served}",
            flush=True,
        )


class StoredRule:
    """Runs as ``xregistry serve`` makes them: a stored rule; each run and its tasks in SQLite
    (a fresh database per destination), executed by a worker claiming the tasks."""

    def __init__(self, workdir: Path, source: str, destination: str) -> None:
        database = workdir / f"stored-{destination.replace(':', '-')}.db"
        engine = make_engine(f"sqlite:///{database}")
        upgrade(engine)
        self.sessions = session_factory(engine)
        with self.sessions.begin() as session:
            for name, host in (("src", source), ("dst", destination)):
                create_registry(session, RegistrySpec(name=name, host=host, insecure=True))
        self.service = ReplicationService(self.sessions)
        self.service.put_rule(
            RuleSpec(name="bench", source="src", destination="dst", prefix=PREFIX)
        )

    def run(self) -> float:
        started = time.perf_counter()
        run = self.service.start_run("bench")
        asyncio.run(Worker(self.sessions, parallel=DEFAULT_PARALLEL).finish(run.id))
        seconds = time.perf_counter() - started
        done = self.service.get_run(run.id)
        if done.status != "succeeded":
            sys.exit(f"stored rule run {done.status}: {done.error or done.failures[:3]}")
        return seconds


def run_engine(source: str, destination: str) -> float:
    """The same run inside this process, the engine alone (no store)."""
    rule = Rule(source, destination, rewrite=Rewrite(prefix=PREFIX))
    started = time.perf_counter()
    report = asyncio.run(replicate(rule))
    seconds = time.perf_counter() - started
    if not report.ok:
        sys.exit(f"replication reported errors: {report.errors[:3]}")
    return seconds


def throughput_bench(workdir: Path, layers: LayerSource, size: int, rounds: int = 3) -> None:
    """Best of ``rounds`` for each way: a shared 2-core machine is noisy."""
    with run_registry(workdir) as source, run_registry(workdir) as target:
        blob = Blob.of(LAYER, (layers.pool * (size // len(layers.pool) + 1))[:size])
        asyncio.run(_push(source.host, image([blob], 0)))
        get_url = f"{source.url}/v2/big/blobs/{blob.digest}"
        best: dict[str, float] = {}
        for n in range(rounds):
            rule = Rule(source.host, target.host, rewrite=Rewrite(prefix=f"ours{n}"))
            started = time.perf_counter()
            report = asyncio.run(replicate(rule))
            seconds = time.perf_counter() - started
            if not report.ok or report.counts.bytes_copied < size:
                sys.exit(f"throughput copy failed: {report.as_dict()}")
            trials = {
                "ours (replicate, verified)": seconds,
                "curl GET | curl PUT (streamed)": _curl_copy(
                    get_url, target.url, f"piped{n}", blob.digest, piped=True
                ),
                "curl GET, then curl PUT": _curl_copy(
                    get_url, target.url, f"staged{n}", blob.digest, piped=False
                ),
            }
            for label, seconds in trials.items():
                best[label] = min(seconds, best.get(label, seconds))
        ours = best["ours (replicate, verified)"]
        mb = size / 1e6
        print(f"throughput, one {size / MiB:.0f} MiB blob registry → registry (best of {rounds}):")
        for label, seconds in best.items():
            versus = f"   ours/curl {seconds / ours:.2f}" if label.startswith("curl") else ""
            print(
                f"    {label:<32} {mb / seconds:7.0f} MB/s  ({seconds:.2f} s){versus}", flush=True
            )


async def _push(host: str, built: BuiltManifest) -> None:
    async with RegistryClient(host) as client:
        await push_built(client, "big", built, "1")


def _curl_copy(get_url: str, registry: str, repository: str, digest: str, *, piped: bool) -> float:
    started = time.perf_counter()
    headers = subprocess.run(
        [
            "curl",
            "-sf",
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
            f"{registry}/v2/{repository}/blobs/uploads/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    location = next(
        line.split(":", 1)[1].strip()
        for line in headers.splitlines()
        if line.lower().startswith("location:")
    )
    put_url = f"{location}{'&' if '?' in location else '?'}digest={digest}"
    put = [
        "curl",
        "-sf",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "-o",
        "/dev/null",
    ]
    if piped:
        subprocess.run(
            f"curl -sf '{get_url}' | {shlex.join(put)} -T - '{put_url}'", shell=True, check=True
        )
    else:
        body = subprocess.run(["curl", "-sf", get_url], capture_output=True, check=True).stdout
        subprocess.run([*put, "--data-binary", "@-", put_url], input=body, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the image counts")
    parser.add_argument("--corpus", default="S,L", help="S, L or S,L")
    parser.add_argument("--latency", type=float, default=0.04, help="seconds per request")
    parser.add_argument("--blob-mb", type=int, default=256, help="throughput blob size (MiB)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where the registries store blobs [default: /dev/shm: disk write-back is noise]",
    )
    parser.add_argument(
        "--resync-only",
        action="store_true",
        help="only the no-change re-sync as processes, ours beside skopeo (no engine, stored "
        "rule, latency or throughput runs)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="re-syncs with --resync-only")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="with --resync-only: also count the instructions of one re-sync (needs valgrind)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="with --resync-only: also run ours from this source tree (PYTHONPATH), in the run",
    )
    args = parser.parse_args()
    needed = ("docker-registry", "skopeo", "curl", *(("valgrind",) if args.instructions else ()))
    missing = [p for p in needed if shutil.which(p) is None]
    if missing:
        sys.exit(f"bench needs {', '.join(missing)}")
    version = subprocess.run(["skopeo", "--version"], capture_output=True, text=True).stdout
    print(
        f"{version.strip()}; ours: python {sys.version.split()[0]}, scale {args.scale}", flush=True
    )
    layers = LayerSource()
    with tempfile.TemporaryDirectory(prefix="xregistry-bench-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        warm()
        if args.baseline is not None:
            warm(args.baseline)
        for name in args.corpus.split(","):
            spec = CORPORA[name.strip().upper()].scaled(args.scale)
            if args.resync_only:
                resync_bench(
                    spec,
                    workdir,
                    layers,
                    args.rounds,
                    args.baseline,
                    args.latency,
                    args.instructions,
                )
            else:
                corpus_bench(spec, workdir, layers, args.latency)
        if not args.resync_only:
            throughput_bench(workdir, layers, args.blob_mb * MiB)


if __name__ == "__main__":
    main()
