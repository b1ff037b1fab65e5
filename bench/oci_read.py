"""Read throughput of the OCI client against its limits, in one run.

1. A local registry with 1,000 tagged manifests: every manifest fetched through our client
   (digest-verified, parsed) versus the same URLs fetched by ``wrk`` (C, no parsing) and by a bare
   aiohttp loop (no auth layer, no retries, no verification).
2. A 200 MB blob: our streamed, digest-verified download versus ``curl -o /dev/null``.

Run: ``.venv/bin/python -m bench.oci_read [--tags 1000] [--blob-mb 200] [--concurrency 16]``
Needs Debian's ``docker-registry``, ``wrk``, ``curl`` and ``openssl``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from catalog.oci import mediatypes as mt
from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from catalog.oci.manifest import parse_manifest
from tests.harness.registry import run_registry


def require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        sys.exit(f"bench needs {', '.join(missing)}: apt-get install -y {' '.join(missing)}")


async def seed(client: RegistryClient, repo: str, tags: int) -> list[str]:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = os.urandom(4096)
    blobs = [(mt.OCI_CONFIG, config), ("application/vnd.oci.image.layer.v1.tar", layer)]
    for _, data in blobs:
        await client.push_blob(repo, Digest.of(data), data)
    descriptors = [{"mediaType": m, "digest": str(Digest.of(d)), "size": len(d)} for m, d in blobs]
    limit = asyncio.Semaphore(16)

    async def push(i: int) -> str:
        doc = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": descriptors[0],
            "layers": descriptors[1:],
            "annotations": {"bench.index": str(i)},
        }
        async with limit:
            await client.put_manifest(repo, parse_manifest(json.dumps(doc).encode()), f"t{i:04d}")
        return f"t{i:04d}"

    return list(await asyncio.gather(*(push(i) for i in range(tags))))


async def client_rate(client: RegistryClient, repo: str, tags: list[str], conc: int) -> float:
    limit = asyncio.Semaphore(conc)

    async def one(tag: str) -> None:
        async with limit:
            await client.get_manifest(repo, tag)

    started = time.perf_counter()
    await asyncio.gather(*(one(t) for t in tags))
    return len(tags) / (time.perf_counter() - started)


async def bare_rate(url: str, repo: str, tags: list[str], conc: int) -> float:
    limit = asyncio.Semaphore(conc)
    headers = {"Accept": mt.MANIFEST_ACCEPT}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as session:

        async def one(tag: str) -> None:
            async with limit, session.get(f"{url}/v2/{repo}/manifests/{tag}", headers=headers) as r:
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(t) for t in tags))
        return len(tags) / (time.perf_counter() - started)


def wrk_rate(url: str, repo: str, tags: list[str], conc: int, seconds: int) -> float:
    paths = ",".join(f'"/v2/{repo}/manifests/{t}"' for t in tags)
    script = f"""
paths = {{{paths}}}
i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {{["Accept"] = "{mt.MANIFEST_ACCEPT}"}})
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{conc}", f"-d{seconds}s", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        sys.exit(f"could not read wrk's output:\n{out}")
    return float(match.group(1))


async def blob_seconds(client: RegistryClient, repo: str, digest: Digest, size: int) -> float:
    started = time.perf_counter()
    received = 0
    async for chunk in client.blob_chunks(repo, digest, size):
        received += len(chunk)
    assert received == size
    return time.perf_counter() - started


def curl_seconds(url: str, verify: bool = False) -> float:
    """curl alone, or piped into openssl's sha256: the same work as ours (download and verify)."""
    started = time.perf_counter()
    if verify:
        command = f"curl -sSf '{url}' | openssl dgst -sha256 > /dev/null"
        subprocess.run(command, shell=True, check=True)
    else:
        subprocess.run(["curl", "-sSf", "-o", "/dev/null", url], check=True)
    return time.perf_counter() - started


def hash_seconds(size: int) -> float:
    data = os.urandom(size)
    started = time.perf_counter()
    h = hashlib.sha256()
    for i in range(0, size, 4 << 20):
        h.update(data[i : i + (4 << 20)])
    return time.perf_counter() - started


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    with run_registry(workdir, extra={"log": {"level": "error"}}) as reg:
        async with RegistryClient(reg.host) as client:
            repo = "bench/read"
            print(f"seeding {args.ntags} manifests into {reg.url} …", flush=True)
            tags = await seed(client, repo, args.ntags)
            await client_rate(client, repo, tags[:100], args.concurrency)  # warm-up
            ours = max([await client_rate(client, repo, tags, args.concurrency) for _ in range(3)])
            bare = max([await bare_rate(reg.url, repo, tags, args.concurrency) for _ in range(3)])
            wrk = wrk_rate(reg.url, repo, tags, args.concurrency, args.wrk_seconds)
            print(f"manifests/s  xregistry client: {ours:8.0f}")
            print(f"manifests/s  bare aiohttp:     {bare:8.0f}   ratio {ours / bare:.2f}")
            print(f"manifests/s  wrk:              {wrk:8.0f}   ratio {ours / wrk:.2f}")

            size = args.blob_mb * 1024 * 1024
            print(f"pushing a {args.blob_mb} MB blob …", flush=True)
            data = os.urandom(size)
            digest = Digest.of(data)
            await client.push_blob(repo, digest, data)
            del data
            blob_url = f"{reg.url}/v2/{repo}/blobs/{digest}"
            curl_seconds(blob_url)  # warm the page cache for both
            ours_s = min([await blob_seconds(client, repo, digest, size) for _ in range(3)])
            curl_s = min([curl_seconds(blob_url) for _ in range(3)])
            curl_v = min([curl_seconds(blob_url, verify=True) for _ in range(3)])
            mb = size / 1e6
            print(f"blob MB/s    xregistry client: {mb / ours_s:8.0f}   (sha256-verified)")
            print(
                f"blob MB/s    curl -o /dev/null:{mb / curl_s:8.0f}   ratio {curl_s / ours_s:.2f}"
            )
            print(
                f"blob MB/s    curl | openssl:   {mb / curl_v:8.0f}   ratio {curl_v / ours_s:.2f}"
            )
            print(f"sha256 MB/s  one core, hashlib: {mb / hash_seconds(size):7.0f}   (our ceiling)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tags", dest="ntags", type=int, default=1000)
    parser.add_argument("--blob-mb", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--wrk-seconds", type=int, default=5)
    args = parser.parse_args()
    require("docker-registry", "wrk", "curl", "openssl")
    with tempfile.TemporaryDirectory(prefix="xregistry-bench-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
