"""The limit of a no-change re-sync as a process: the requests ``replicate once`` makes, and
nothing else.

It starts as the floor does (the interpreter, asyncio, click), then asks what ours asks of a
corpus without attachments (S): the source's catalog and each repository's tags (one page
each), one referrers probe, and for each tag the source's
manifest (GET) beside the destination's tag (HEAD), ``parallel`` images at a time over kept-alive
connections. It verifies nothing, decodes no manifest and keeps no report: what it takes is what
the registries' answers cost on this machine, which no client of ours can undercut. Exits 1 when
a destination tag is not at the source's digest (the corpus was not in sync).

Run as a file (``python bench/_resync_limit.py SOURCE DESTINATION/PREFIX PARALLEL``), not as a
module: importing the ``bench`` package would add to what it measures.
"""

import asyncio
import json
import sys

import click  # noqa: F401  (the floor: every process of ours imports it)

ACCEPT = (
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)
Answer = tuple[int, dict[str, str], bytes]


class Host:
    """Kept-alive HTTP/1.1 connections to one registry, opened as they are needed."""

    def __init__(self, host: str) -> None:
        self.address, port = host.rsplit(":", 1)
        self.port = int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def ask(self, method: str, path: str, accept: str = ACCEPT) -> Answer:
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.address, self.port)
        request = f"{method} {path} HTTP/1.1\r\nHost: {self.address}\r\nAccept: {accept}\r\n\r\n"
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
        length = int(headers.get("content-length", "0")) if method != "HEAD" else 0
        body = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return status, headers, body

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def resync(source: Host, destination: Host, prefix: str, parallel: int) -> int:
    _, _, body = await source.ask("GET", "/v2/_catalog?n=100", "application/json")
    repositories = json.loads(body)["repositories"]
    images = asyncio.Semaphore(parallel)
    probed = asyncio.Event()
    differ = 0

    async def image(repository: str, tag: str) -> None:
        nonlocal differ
        async with images:
            (_, theirs, _), (_, ours, _) = await asyncio.gather(
                source.ask("GET", f"/v2/{repository}/manifests/{tag}"),
                destination.ask("HEAD", f"/v2/{prefix}/{repository}/manifests/{tag}"),
            )
            digest = theirs["docker-content-digest"]
            differ += digest != ours.get("docker-content-digest")
            if not probed.is_set():
                probed.set()
                await source.ask("GET", f"/v2/{repository}/referrers/{digest}")

    async def repository(name: str) -> None:
        _, _, body = await source.ask("GET", f"/v2/{name}/tags/list?n=1000", "application/json")
        await asyncio.gather(*(image(name, tag) for tag in json.loads(body)["tags"]))

    await asyncio.gather(*(repository(name) for name in repositories))
    source.close()
    destination.close()
    return differ


def main() -> None:
    source, target, parallel = sys.argv[1:4]
    destination, prefix = target.split("/", 1)
    differ = asyncio.run(resync(Host(source), Host(destination), prefix, int(parallel)))
    if differ:
        sys.exit(f"{differ} destination tags are not at the source's digest")


if __name__ == "__main__":
    main()
