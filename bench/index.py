"""Indexing speed and package look-up latency, beside their limits, in one run.

1. A local registry with R repositories x T tags; every image has a cosign signature (``.sig``
   tag) and an SPDX SBOM of P packages (referrer, fallback tag). Full index, then a no-change
   re-index, through ``CatalogService.index`` on SQLite (``--database postgresql``: on
   PostgreSQL); beside them, the registry's raw manifest GET rate and HEAD rate (bare aiohttp
   loops over the same tags): the full index's ceiling is the GET rate over the ~6 requests an
   image needs, the re-index's floor one HEAD per tag at the HEAD rate (printed also with the
   repositories' tag lists added, at their own bare rate: a re-index must read them). The full
   index's CPU seconds per image (the indexer with its worker processes, the registry, and on
   PostgreSQL the database server, all on the same cores) are printed too: on a shared
   machine they vary much less than its wall time. So is the registry's CPU per raw blob GET
   beside a manifest GET's: two of a crawl's six requests are blob GETs, which cost
   Distribution about twice as much, a bound the GET-rate ceiling does not show.
2. 1,000,000 SBOM package rows on SQLite and on PostgreSQL: purl look-up latency (p50/p99)
   through ``queries.search_packages`` beside the same look-up as raw SQL.

Run: ``.venv/bin/python -m bench.index [--repos 200] [--tags 10] [--packages 200] [--rows 1000000]
[--database sqlite|postgresql] [--sbom spdx|cyclonedx]``
Needs Debian's ``docker-registry`` and ``postgresql``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, insert, text

from bench._stats import p50_p99
from catalog.app.catalog_service import CatalogService
from catalog.oci import mediatypes as mt
from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from catalog.store import queries
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import Attachment, Sbom, SbomPackage
from catalog.store.package_keys import key_range
from catalog.store.registries import RegistrySpec
from tests.harness.images import Blob, BuiltManifest, serialize
from tests.harness.postgres import run_postgres
from tests.harness.processes import process_cpu, stat_fields
from tests.harness.registry import run_registry
from tests.pushing import push_built
from tests.signing import push_signature

LAYER = os.urandom(4096)


def _packages(packages: int, seed: int) -> list[tuple[str, str, str]]:
    """(name, version, purl) of an image's packages: random names and versions, purls shared
    by every image (as an ecosystem's packages repeat across images)."""
    rng = random.Random(seed)
    return [
        (
            f"lib{rng.randrange(5000)}",
            f"1.{rng.randrange(30)}.{rng.randrange(10)}",
            f"pkg:npm/lib{i % 5000}@1.{i % 30}.{i % 10}",
        )
        for i in range(packages)
    ]


def spdx(packages: int, seed: int) -> bytes:
    doc = {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"image-{seed}",
        "creationInfo": {"creators": ["Tool: bench"], "created": "2026-01-01T00:00:00Z"},
        "packages": [
            {
                "SPDXID": f"SPDXRef-Package-{i}",
                "name": name,
                "versionInfo": version,
                "licenseConcluded": "MIT",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": purl,
                    }
                ],
            }
            for i, (name, version, purl) in enumerate(_packages(packages, seed))
        ],
    }
    return json.dumps(doc).encode()


def cyclonedx(packages: int, seed: int) -> bytes:
    """The same packages as :func:`spdx`'s, as CycloneDX 1.5 components."""
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "bench", "version": "1"}]},
            "component": {"type": "container", "name": f"image-{seed}"},
        },
        "components": [
            {
                "bom-ref": purl,
                "type": "library",
                "name": name,
                "version": version,
                "licenses": [{"license": {"id": "MIT"}}],
                "purl": purl,
            }
            for name, version, purl in _packages(packages, seed)
        ],
    }
    return json.dumps(doc).encode()


SBOMS = {
    "spdx": (spdx, "application/spdx+json"),
    "cyclonedx": (cyclonedx, "application/vnd.cyclonedx+json"),
}


def image(n: int) -> BuiltManifest:
    config = Blob.of(
        mt.OCI_CONFIG,
        serialize({"architecture": "amd64", "os": "linux", "created": str(n), "rootfs": {}}),
    )
    layer = Blob.of("application/vnd.oci.image.layer.v1.tar+gzip", LAYER)
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    }
    raw = serialize(doc)
    return BuiltManifest(
        mt.OCI_MANIFEST,
        raw,
        Blob.of(mt.OCI_MANIFEST, raw).digest,
        len(raw),
        [config, layer],
        [],
        None,
    )


def sbom_referrer(subject: BuiltManifest, payload: bytes, media_type: str) -> BuiltManifest:
    from tests.harness.images import build_artifact

    return build_artifact(subject, media_type, payload, media_type)


async def seed(
    host: str, repos: int, tags: int, packages: int, sbom_format: str = "spdx"
) -> tuple[list[tuple[str, str]], list[str]]:
    """The images pushed, as (repository, tag), and the paths of their SBOM blobs."""
    key = ec.generate_private_key(ec.SECP256R1())
    limit = asyncio.Semaphore(16)
    refs: list[tuple[str, str]] = []
    blobs: list[str] = []
    async with RegistryClient(host) as client:

        async def one(r: int, t: int) -> None:
            repo, tag = f"bench/r{r:03d}", f"v{t}"
            built = image(r * 1000 + t)
            make, media_type = SBOMS[sbom_format]
            sbom = sbom_referrer(built, make(packages, r * 1000 + t), media_type)
            async with limit:
                await push_built(client, repo, built, tag)
                await push_signature(client, repo, built.digest, key)
                await push_built(client, repo, sbom)
            refs.append((repo, tag))
            blobs.append(f"/v2/{repo}/blobs/{sbom.blobs[-1].digest}")

        # Tags of one repository in sequence: their SBOM pushes share no fallback index, but
        # a repository's first push creates it, and Distribution has no conditional PUT.
        async def repo(r: int) -> None:
            for t in range(tags):
                await one(r, t)

        started = time.perf_counter()
        await asyncio.gather(*(repo(r) for r in range(repos)))
        print(
            f"seeded {len(refs)} images (+signature, +{sbom_format} SBOM)"
            f" in {time.perf_counter() - started:.1f} s"
        )
    return refs, blobs


REQUESTS_PER_IMAGE = 6  # image, signature manifest + blob, fallback index, SBOM manifest + blob


async def all_tags(url: str, refs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every tag of the repositories of ``refs`` (signature and fallback tags too)."""
    async with aiohttp.ClientSession() as session:

        async def one(repo: str) -> list[tuple[str, str]]:
            async with session.get(f"{url}/v2/{repo}/tags/list?n=10000") as r:
                return [(repo, tag) for tag in (await r.json())["tags"]]

        listed = await asyncio.gather(*(one(repo) for repo in sorted({r for r, _ in refs})))
    return [ref for tags in listed for ref in tags]


async def raw_tag_list_rate(url: str, repositories: list[str]) -> float:
    """Tag lists per second, bare aiohttp at 16 in flight: what any re-index reads first."""
    limit = asyncio.Semaphore(16)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

        async def one(repo: str) -> None:
            async with limit, session.get(f"{url}/v2/{repo}/tags/list?n=10000") as r:
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(repo) for repo in repositories))
        return len(repositories) / (time.perf_counter() - started)


async def raw_manifest_rate(url: str, refs: list[tuple[str, str]], method: str = "GET") -> float:
    paths = [f"/v2/{repo}/manifests/{tag}" for repo, tag in refs]
    return await raw_rate(url, paths, method, {"Accept": mt.MANIFEST_ACCEPT})


async def raw_rate(url: str, paths: list[str], method: str, headers: dict[str, str]) -> float:
    """Requests per second, bare aiohttp at 16 in flight, one per path."""
    limit = asyncio.Semaphore(16)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

        async def one(path: str) -> None:
            async with limit, session.request(method, url + path, headers=headers) as r:
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(path) for path in paths))
        return len(paths) / (time.perf_counter() - started)


def fill_packages(engine: Engine, rows: int) -> str:
    """``rows`` package rows over 5,000 SBOMs; returns a purl that matches a handful."""
    sessions = session_factory(engine)
    per_sbom = max(1, rows // 5000)
    with sessions.begin() as session:
        sboms = []
        for s in range(rows // per_sbom):
            digest = str(Digest.of(b"sbom%d" % s))
            session.add(
                Attachment(
                    subject_digest=str(Digest.of(b"img%d" % s)),
                    attachment_digest=digest,
                    kind="sbom",
                    scheme="referrers-api",
                )
            )
            sboms.append(Sbom(attachment_digest=digest, layer_digest=digest, format="spdx"))
        session.add_all(sboms)
        session.flush()
        ids = [s.id for s in sboms]
    rng = random.Random(7)
    batch: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for i in range(rows):
            name = f"lib{rng.randrange(200_000)}"
            version = f"{rng.randrange(5)}.{rng.randrange(10)}"
            batch.append(
                {
                    "sbom_id": ids[i // per_sbom],
                    "purl": f"pkg:npm/{name}@{version}",
                    "purl_base": f"pkg:npm/{name}",
                    "type": "npm",
                    "namespace": None,
                    "name": name,
                    "version": version,
                    "licenses": [],
                }
            )
            if len(batch) == 10_000:
                connection.execute(insert(SbomPackage), batch)
                batch = []
        if batch:
            connection.execute(insert(SbomPackage), batch)
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE sbom_packages"))
    return "pkg:npm/lib4242"  # version-less: ~5 rows over its versions


def latencies(call: Callable[[], object], n: int = 1000) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return p50_p99(samples)


def lookup_bench(label: str, url: str, rows: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    purl = fill_packages(engine, rows)
    print(f"{label}: {rows:,} package rows loaded in {time.perf_counter() - started:.1f} s")
    sessions = session_factory(engine)

    def ours() -> None:
        with sessions() as session:
            queries.search_packages(session, purl=purl, size=100)

    raw_sql = text(
        "SELECT p.id, a.subject_digest FROM sbom_packages p JOIN sboms s ON p.sbom_id = s.id"
        " JOIN attachments a ON a.attachment_digest = s.attachment_digest"
        " WHERE p.purl_key BETWEEN :low AND :high AND p.purl_base = :base ORDER BY +p.id LIMIT 101"
    )  # +p.id: without statistics SQLite would walk the table in id order rather than sort
    # the few rows of a key range (ours orders by subject digest first: the range is used)
    low, high = key_range(purl)  # the version-less purl is its own base

    def raw() -> None:
        with engine.connect() as connection:
            connection.execute(raw_sql, {"base": purl, "low": low, "high": high}).all()

    with sessions() as session:
        hits = len(queries.search_packages(session, purl=purl, size=100).items)
    raw()
    print(f"{label}: {purl} matches {hits} packages")
    p50, p99 = latencies(ours)
    r50, r99 = latencies(raw)
    print(f"{label}: purl look-up  xregistry p50 {p50:.2f} ms  p99 {p99:.2f} ms")
    print(
        f"{label}: purl look-up  raw SQL   p50 {r50:.2f} ms  p99 {r99:.2f} ms"
        f"   ratio p99 {p99 / r99:.2f}"
    )
    engine.dispose()


def own_cpu() -> tuple[float, float]:
    """CPU seconds of this process, and of its children that ended (an indexer's workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


class ThreadCpu:
    """CPU seconds of this process's threads by name (``catalog-writer``, ``catalog-reader``,
    the event loop ``MainThread``…), sampled from ``/proc/self/task`` every 20 ms while it runs:
    a crawl's threads end with it, and their ``/proc`` entries with them. py-spy cannot tell
    this (it misses work done without the GIL, such as SQLite's)."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[str, float]] = {}  # thread id -> (name, CPU seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> ThreadCpu:
        self._sample()
        self._start = {tid: cpu for tid, (_, cpu) in self._seen.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def _sample(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        for tid in os.listdir("/proc/self/task"):
            try:
                stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            except OSError:
                continue  # ended between the listing and the read
            fields = stat.rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            name = names.get(int(tid)) or self._seen.get(int(tid), ("other", 0.0))[0]
            self._seen[int(tid)] = (name.split("_")[0], cpu)

    def by_name(self) -> dict[str, float]:
        """CPU seconds by thread name over the run (threads of one name summed; the sampler's
        own under ``bench-sampler``)."""
        totals: dict[str, float] = {}
        for tid, (name, cpu) in self._seen.items():
            totals[name] = totals.get(name, 0.0) + cpu - self._start.get(tid, 0.0)
        return totals


def wal_position(engine: Engine) -> int:
    """Bytes PostgreSQL has written to its WAL so far (0 on SQLite): what a crawl's writes
    cost the server beside its CPU (every row and index entry, and on a production server's
    settings the full pages after each checkpoint)."""
    if engine.dialect.name != "postgresql":
        return 0
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")))


def server_cpu_of(pid: int | None) -> float:
    """CPU seconds so far of a server process and its children (PostgreSQL's postmaster and
    backends, each in a session of its own): each one's own, and the children's it reaped
    (fields 14 to 17 of ``stat``); 0 without a server (SQLite)."""
    if pid is None:
        return 0.0
    ticks = 0
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = stat_fields(int(child))
        except OSError:
            continue  # ended between the listing and the read
        if int(child) == pid or int(fields[1]) == pid:
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


async def index_bench(args: argparse.Namespace, workdir: Path) -> None:
    with run_registry(workdir, extra={"log": {"level": "error"}}) as reg:
        refs, blobs = await seed(reg.host, args.repos, args.tags, args.packages, args.sbom)
        registry_pid = reg.process.pid
        if args.database == "postgresql":
            with run_postgres(workdir) as pg:
                database = pg.create_database("bench")
                assert pg.process is not None
                await index_runs(
                    reg.url, reg.host, refs, blobs, database, registry_pid, pg.process.pid
                )
        else:
            database = f"sqlite:///{workdir / 'catalog.db'}"
            await index_runs(reg.url, reg.host, refs, blobs, database, registry_pid, None)


async def index_runs(
    url: str,
    host: str,
    refs: list[tuple[str, str]],
    blobs: list[str],
    database: str,
    registry_pid: int,
    server_pid: int | None,
) -> None:
    engine = make_engine(database)
    upgrade(engine)
    catalog = CatalogService(session_factory(engine))
    catalog.add_registry(RegistrySpec("bench", host))
    # CPU time as well as wall time: on a shared machine the wall time is noisy, the CPU an
    # image costs the indexer (and the registry, its peer on the same cores) much less so.
    cpu, registry_cpu, server_cpu = own_cpu(), process_cpu(registry_pid), server_cpu_of(server_pid)
    wal = wal_position(engine)
    started = time.perf_counter()
    with ThreadCpu() as threads:
        stats = await catalog.index("bench")
    full = time.perf_counter() - started
    (main, workers), registry_cpu = own_cpu(), process_cpu(registry_pid) - registry_cpu
    server_cpu = server_cpu_of(server_pid) - server_cpu  # the database server's, on our cores
    wal = wal_position(engine) - wal
    by_thread = threads.by_name()
    # Not the indexer's: the sampler's own CPU.
    main, workers = main - cpu[0] - by_thread.pop("bench-sampler", 0.0), workers - cpu[1]
    assert stats.errors == 0, catalog.list_index_errors("bench").items[:3]
    started = time.perf_counter()
    again = await catalog.index("bench")
    reindex = time.perf_counter() - started
    tags = await all_tags(url, refs)
    raw_cpu = process_cpu(registry_pid)
    get_rate = max([await raw_manifest_rate(url, refs) for _ in range(3)])
    raw_cpu = (process_cpu(registry_pid) - raw_cpu) / (3 * len(refs))
    blob_cpu = process_cpu(registry_pid)
    blob_rate = await raw_rate(url, blobs, "GET", {})
    blob_cpu = (process_cpu(registry_pid) - blob_cpu) / len(blobs)
    head_rate = max([await raw_manifest_rate(url, tags, "HEAD") for _ in range(3)])
    repositories = sorted({repo for repo, _ in refs})
    list_rate = max([await raw_tag_list_rate(url, repositories) for _ in range(3)])
    images = len(refs)
    ceiling = get_rate / REQUESTS_PER_IMAGE
    floor = len(tags) / head_rate
    # What any re-index must also read: each repository's tag list.
    floor_lists = floor + len(repositories) / list_rate
    driver = ""
    if engine.dialect.name == "postgresql":  # psycopg's C implementation halves the writer's CPU
        import psycopg

        driver = f" (psycopg's {psycopg.pq.__impl__} implementation)"
    print(f"database: {engine.dialect.name}{driver}")
    print(
        f"registry raw manifest GETs: {get_rate:.0f}/s, HEADs: {head_rate:.0f}/s"
        f"  (a full index needs ~{REQUESTS_PER_IMAGE} requests per image);"
        f" the registry's CPU per raw GET {1000 * raw_cpu:.2f} ms"
    )
    # A crawl's six requests: four manifest GETs and two blob GETs (signature, SBOM).
    crawl_cpu = 4 * raw_cpu + 2 * blob_cpu
    cores = os.cpu_count() or 1
    print(
        f"registry raw blob GETs: {blob_rate:.0f}/s, its CPU per raw blob GET"
        f" {1000 * blob_cpu:.2f} ms; a crawl's 4 manifest + 2 blob GETs cost it"
        f" {1000 * crawl_cpu:.1f} ms an image: the registry alone on {cores} cores bounds the"
        f" full index at {cores / crawl_cpu:.0f} images/s ({cores / crawl_cpu / ceiling:.2f} of"
        " the ceiling)"
    )
    print(
        f"full index: {full:.1f} s for {images} images = {images / full:.0f} images/s"
        f" ({stats.manifests_new} manifests, {stats.documents} documents)"
        f"  ceiling {ceiling:.0f} images/s  ratio {images / full / ceiling:.2f}"
    )
    print(
        f"full index CPU: indexer {main + workers:.1f} s ({1000 * (main + workers) / images:.1f}"
        f" ms per image; its worker processes {workers:.1f} s),"
        f" registry {registry_cpu:.1f} s ({1000 * registry_cpu / images:.1f} ms per image);"
        + (
            f" PostgreSQL server {server_cpu:.1f} s ({1000 * server_cpu / images:.1f} ms per"
            f" image, WAL {wal / images / 1024:.0f} KiB per image);"
            if server_pid is not None
            else ""
        )
        + f" load average {os.getloadavg()[0]:.1f}"
    )
    print(
        "full index CPU by thread: "
        + ", ".join(
            f"{name} {1000 * cpu / images:.1f}"
            for name, cpu in sorted(by_thread.items(), key=lambda item: -item[1])
            if cpu > 0
        )
        + " ms per image"
    )
    # Both share the machine's cores: however well the indexer overlaps its work, it cannot
    # pass this rate here.
    bound = cores * images / (main + workers + registry_cpu + server_cpu)
    print(
        f"CPU bound of indexer + registry{' + database server' if server_pid else ''}"
        f" on {cores} cores: {bound:.0f} images/s"
        f" ({bound / ceiling:.2f} of the ceiling)"
    )
    print(
        f"no-change re-index: {reindex:.2f} s for {again.tags_seen} tags"
        f" ({again.manifest_gets} manifest GETs)"
        f"  floor {floor:.2f} s (one HEAD per tag)  ratio {reindex / floor:.2f}"
    )
    print(
        f"no-change re-index beside the floor with the tag lists: {floor_lists:.2f} s"
        f" ({len(repositories)} tag lists at {list_rate:.0f}/s, then one HEAD per tag)"
        f"  ratio {reindex / floor_lists:.2f}"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--sbom", choices=sorted(SBOMS), default="spdx", help="the SBOMs' format")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--skip-index", action="store_true")
    parser.add_argument("--skip-lookup", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xregistry-bench-") as tmp:
        workdir = Path(tmp)
        if not args.skip_index:
            asyncio.run(index_bench(args, workdir))
        if not args.skip_lookup:
            lookup_bench("sqlite", f"sqlite:///{workdir / 'lookup.db'}", args.rows)
            with run_postgres(workdir) as pg:
                lookup_bench("postgresql", pg.create_database("bench"), args.rows)


if __name__ == "__main__":
    main()
