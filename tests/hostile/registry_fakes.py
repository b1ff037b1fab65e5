"""Hostile registries on 127.0.0.1: a raw HTTP/1.1 server whose answers a test scripts byte by byte.

Raw, not aiohttp's server: a hostile registry sends what no well-behaved server library lets one
send (a wrong Content-Length, a reset after the headers, a body that never ends). Each connection
carries one request and is closed after it. The server runs on its own thread and loop, so the
code under test may be a client in the test's loop or a CLI in a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


@dataclass(slots=True)
class Fake:
    host: str
    requests: list[Request] = field(default_factory=list)


def head(status: int, headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    """A status line and headers (``Content-Length: length`` when given; always ``close``)."""
    lines = [f"HTTP/1.1 {status} X", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    writer.write(head(status, headers, len(body)) + body)
    await writer.drain()


async def send_json(
    writer: asyncio.StreamWriter, doc: object, headers: dict[str, str] | None = None
) -> None:
    await send(
        writer,
        200,
        json.dumps(doc).encode(),
        {"Content-Type": "application/json"} | (headers or {}),
    )


async def endless(writer: asyncio.StreamWriter, opening: bytes, filler: bytes) -> None:
    """``opening`` then ``filler`` for as long as the client reads (no length, no end)."""
    writer.write(head(200, {"Content-Type": "application/json"}) + opening)
    block = filler * max(1, CHUNK // len(filler))
    while True:
        writer.write(block)
        await writer.drain()


async def trickle(writer: asyncio.StreamWriter, headers: bytes, body: bytes, every: float) -> None:
    """``headers`` at once, then ``body`` one byte every ``every`` seconds (a slow loris)."""
    writer.write(headers)
    await writer.drain()
    for i in range(len(body)):
        await asyncio.sleep(every)
        writer.write(body[i : i + 1])
        await writer.drain()


# -- a small image, so that a reference resolves before the hostile part begins ------------------

CONFIG = b"{}"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(CONFIG).hexdigest(),
            "size": len(CONFIG),
        },
        "layers": [],
    }
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


async def send_manifest(writer: asyncio.StreamWriter, method: str) -> None:
    headers = {
        "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        "Docker-Content-Digest": MANIFEST_DIGEST,
    }
    if method == "HEAD":
        writer.write(head(200, headers, len(MANIFEST)))
        await writer.drain()
        return
    await send(writer, 200, MANIFEST, headers)


def image_then(hostile: Handler) -> Handler:
    """A registry serving ``app:v1`` (a 404 for any other tag) and ``hostile`` for the rest."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        if req.path in ("/v2/app/manifests/v1", f"/v2/app/manifests/{MANIFEST_DIGEST}"):
            await send_manifest(writer, req.method)
        elif "/manifests/" in req.path:
            unknown = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}'
            await send(writer, 404, b"" if req.method == "HEAD" else unknown)
        else:
            await hostile(req, writer)

    return handle


# -- the server -----------------------------------------------------------------------------------


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length:
        await reader.readexactly(length)
    return Request(method, target, headers)


@contextlib.contextmanager
def serve(handler: Handler) -> Iterator[Fake]:
    """Run ``handler`` for every request on 127.0.0.1 until the block ends."""
    started = threading.Event()
    fake = Fake("")
    loop = asyncio.new_event_loop()
    stop = loop.create_future()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
                req = await _read_request(reader)
                if req is not None:
                    fake.requests.append(req)
                    await handler(req, writer)
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", 0)
        fake.host = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        started.set()
        async with server:
            await stop
        handlers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
