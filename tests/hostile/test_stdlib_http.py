"""The one-shot commands' HTTP/1.1 client (catalog.oci._stdlib) reads each answer's head and body
itself: against raw answers no server library would send, every head is bounded (line length,
field count), folded or control-character lines are refused, a body is framed exactly as it says
(length, chunks), and nothing from an answer can break into the next request's line.

Each fake is a raw HTTP server on 127.0.0.1 (tests/hostile/registry_fakes.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Literal

import pytest

from catalog.oci._http import READ_CHUNK
from catalog.oci._stdlib import MAX_HEADERS, MAX_LINE, StdlibTransport
from catalog.oci.client import RegistryClient, RegistryOptions
from catalog.oci.credentials import Credentials
from catalog.oci.digest import Digest
from catalog.oci.errors import BadResponse, RegistryUnavailable, SizeMismatch
from tests.hostile.registry_fakes import Fake, Request, send, serve, trickle
from tests.hostile.test_registry_client import FAST, failure

TAGS = json.dumps({"name": "app", "tags": ["v1", "v2"]}).encode()


@pytest.fixture
async def clients() -> AsyncIterator[list[RegistryClient]]:
    made: list[RegistryClient] = []
    yield made
    for client in made:
        await client.close()


def make(clients: list[RegistryClient], fake: Fake, **options: object) -> RegistryClient:
    options.setdefault("retry", FAST)
    options["transport"] = "stdlib"
    client = RegistryClient(fake.host, RegistryOptions(**options))  # type: ignore[arg-type]
    clients.append(client)
    return client


def answering(raw: bytes) -> contextlib.AbstractContextManager[Fake]:
    """A registry answering every request with ``raw``, then closing."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()

    return serve(handle)


async def tags(client: RegistryClient) -> list[str]:
    return [tag async for tag in client.tags("app")]


def answer(*fields: bytes, body: bytes = TAGS, end: bytes = b"\r\n") -> bytes:
    return end.join([b"HTTP/1.1 200 OK", *fields, b"", b""]) + body


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        # one more field than the cap
        (
            answer(*[b"X-F%d: v" % i for i in range(MAX_HEADERS + 1)], b"Content-Length: 2"),
            "more than 100 header lines",
        ),
        # a line over the cap, and a head that never ends its first line
        (b"HTTP/1.1 200 OK\r\nX-F: " + b"a" * (MAX_LINE + 10) + b"\r\n\r\n", "over 65536 bytes"),
        (b"HTTP/1.1 200 OK" + b" " * (2 * MAX_LINE), "over 65536 bytes"),
        # obsolete line folding, control characters, a field without a name
        (answer(b"X-A: a", b" folded", b"Content-Length: 2", body=b"{}"), "folded header line"),
        (answer(b"X-A: a\x00b", b"Content-Length: 2", body=b"{}"), "control character"),
        (answer(b"X-A: a\rb", b"Content-Length: 2", body=b"{}"), "control character"),
        (answer(b"Bad Name: x", b"Content-Length: 2", body=b"{}"), "without a field name"),
        (answer(b": x", b"Content-Length: 2", body=b"{}"), "without a field name"),
        # not HTTP/1.x
        (b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\n{}", "not an HTTP/1.x status line"),
        (b"ICY 200 OK\r\n\r\n{}", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n{}", "not an HTTP/1.x status line"),
        # framings that disagree, or one not spoken
        (answer(b"Content-Length: 2", b"Content-Length: 3", body=b"{}"), "two different"),
        (answer(b"Content-Length: -2", body=b"{}"), "content-length"),
        (answer(b"Content-Length: \xb2", body=b"{}"), "content-length"),
        (answer(b"Transfer-Encoding: gzip, chunked", body=b"{}"), "transfer-encoding"),
        (b"HTTP/1.1 101 Switching\r\nUpgrade: h2c\r\n\r\n", "switched protocols"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 6 + b"HTTP/1.1 200 OK\r\n\r\n", "interim answers"),
    ],
)
async def test_a_malformed_head_is_an_unusable_answer(
    clients: list[RegistryClient], raw: bytes, why: str
) -> None:
    with answering(raw) as fake:
        error, _ = await failure(tags(make(clients, fake)), within=5)
    assert isinstance(error, BadResponse)
    assert "unusable answer" in str(error)
    assert why in str(error)
    assert len(fake.requests) == 1  # not retried: it would only come again


@pytest.mark.parametrize(
    "raw",
    [
        # as many fields as the cap, each line as long as it may be
        answer(
            *[b"X-F%d: v" % i for i in range(MAX_HEADERS - 1)],
            b"Content-Length: %d" % len(TAGS),
        ),
        answer(b"X-F: " + b"a" * (MAX_LINE - 10), b"Content-Length: %d" % len(TAGS)),
        # bare LF line ends (RFC 9112 lets a recipient take them), a repeated equal length
        answer(b"Content-Length: %d" % len(TAGS), end=b"\n"),
        answer(b"Content-Length: %d" % len(TAGS), b"content-length: %d" % len(TAGS)),
        # interim answers first; a body that ends with the connection
        b"HTTP/1.1 100 Continue\r\nX-A: b\r\n\r\n" + answer(b"Content-Length: %d" % len(TAGS)),
        answer(b"Connection: close"),
        # chunks with an extension and a trailer
        answer(
            b"Transfer-Encoding: chunked",
            body=b"5 \t;ext=1\r\n"
            + TAGS[:5]
            + b"\r\n%x\r\n" % (len(TAGS) - 5)
            + TAGS[5:]
            + b"\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
    ],
)
async def test_a_well_formed_answer_at_the_bounds_is_read(
    clients: list[RegistryClient], raw: bytes
) -> None:
    with answering(raw) as fake:
        assert await tags(make(clients, fake)) == ["v1", "v2"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"zz\r\n{}\r\n0\r\n\r\n", "bad chunk size"),
        (b"1" * 17 + b"\r\n{}\r\n0\r\n\r\n", "bad chunk size"),
        # chunk-size = 1*HEXDIG: no 0x, sign, or space but before an extension's ";"
        (b"0x2\r\n{}\r\n0\r\n\r\n", "bad chunk size"),
        (b"+2\r\n{}\r\n0\r\n\r\n", "bad chunk size"),
        (b" 2\r\n{}\r\n0\r\n\r\n", "bad chunk size"),
        (b"2 \r\n{}\r\n0\r\n\r\n", "bad chunk size"),
        (b"\x0b2\x0c\r\n{}\r\n0\r\n\r\n", "bad chunk size"),
        (b"2_0\r\n{}\r\n0\r\n\r\n", "bad chunk size"),
        (b"2\r\n{}}\r\n0\r\n\r\n", "longer than its size"),
        (b"ff\r\n{}", "bytes short"),  # the connection ends inside the chunk
        (b"2\r\n{}\r\n0\r\n" + b"X-T: t\r\n" * (MAX_HEADERS + 1) + b"\r\n", "header lines"),
    ],
)
async def test_a_broken_chunked_body_is_a_broken_connection(
    clients: list[RegistryClient], body: bytes, why: str
) -> None:
    with answering(answer(b"Transfer-Encoding: chunked", body=body)) as fake:
        error, _ = await failure(tags(make(clients, fake)), within=5)
    assert isinstance(error, RegistryUnavailable)
    assert why in str(error) or "broke off" in str(error)


async def test_a_body_shorter_than_its_length_is_a_broken_connection(
    clients: list[RegistryClient],
) -> None:
    with answering(answer(b"Content-Length: 1000")) as fake:
        error, _ = await failure(tags(make(clients, fake)), within=5)
    assert isinstance(error, RegistryUnavailable)


async def test_a_location_cannot_break_into_the_request_line(
    clients: list[RegistryClient],
) -> None:
    """A redirect's target is sent as the next request's line: a space in it would end the
    target and let the rest pose as the protocol and more fields."""
    raw = b"HTTP/1.1 307 Go\r\nLocation: /v2/app/tags/list HTTP/1.1 X-Injected: 1\r\n\r\n"
    with answering(raw) as fake:
        error, _ = await failure(tags(make(clients, fake)), within=5)
    assert isinstance(error, BadResponse)
    assert "a space or control character" in str(error)
    assert len(fake.requests) == 1  # the redirect was never sent


async def test_a_head_trickled_without_a_line_end_meets_the_deadline(
    clients: list[RegistryClient],
) -> None:
    """A byte at a time, each well within the read timeout, never a line end: the request's
    deadline ends it, not the line cap."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await trickle(writer, b"", b"HTTP/1.1 200 " + b"x" * 100, every=0.2)

    with serve(handle) as fake:
        client = make(clients, fake, request_timeout=1.5)
        error, took = await failure(client.ping(), within=4)
    assert isinstance(error, RegistryUnavailable)
    assert "no answer within 1.5 s" in str(error)
    assert took >= 1.5


async def test_a_silent_peer_meets_the_read_timeout(clients: list[RegistryClient]) -> None:
    """Headers sent, then nothing: each read waits the read timeout at most, even when the
    request's deadline is far (a blob's body has none)."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(b"Content-Length: 1000", body=b"x"))
        await writer.drain()
        await asyncio.sleep(30)

    with serve(handle) as fake:
        client = make(clients, fake, read_timeout=1.0, request_timeout=20.0)
        error, took = await failure(tags(client), within=8)
    assert isinstance(error, RegistryUnavailable)
    assert took >= 1.0


async def connections_for(clients: list[RegistryClient], reply: bytes, requests: int) -> int:
    """How many connections a client opens for ``requests`` tag lists from a fake that answers
    each request it reads with ``reply`` and closes only when asked."""
    opened: list[int] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(reply)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    async with server:
        host = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = RegistryClient(host, RegistryOptions(transport="stdlib", retry=FAST))
        clients.append(client)
        for _ in range(requests):
            assert await tags(client) == ["v1", "v2"]
        await client.close()
    return len(opened)


async def test_connections_are_kept_alive_and_reused(clients: list[RegistryClient]) -> None:
    """One connection serves request after request (the fake closes only when asked)."""
    opened = await connections_for(clients, answer(b"Content-Length: %d" % len(TAGS)), 5)
    assert opened == 1


async def test_bytes_past_an_answer_are_not_the_next_answer(clients: list[RegistryClient]) -> None:
    """An answer followed, in the same write, by bytes past its end (a second answer nobody
    asked for): its connection is not reused, so the next request gets its own answer, not
    those bytes."""
    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    opened = await connections_for(clients, answer(b"Content-Length: %d" % len(TAGS)) + extra, 3)
    assert opened == 3


@pytest.mark.parametrize("port", [b"abc", b"99999", b"0"])
async def test_a_location_with_a_bad_port_is_an_unusable_answer(
    clients: list[RegistryClient], port: bytes
) -> None:
    """urllib raises ValueError for such a port: it must not escape as a traceback."""
    raw = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%b/x\r\nContent-Length: 0\r\n\r\n"
    with answering(raw % port) as fake:
        error, _ = await failure(tags(make(clients, fake)), within=5)
    assert isinstance(error, BadResponse)
    assert "unusable answer" in str(error)


async def test_a_location_urllib_cannot_parse_is_an_unusable_answer(
    clients: list[RegistryClient],
) -> None:
    """``urljoin`` raises ValueError for an unclosed IPv6 host: one line, no traceback."""
    raw = b"HTTP/1.1 302 Found\r\nLocation: http://[::1/x\r\nContent-Length: 0\r\n\r\n"
    with answering(raw) as fake:
        error, _ = await failure(tags(make(clients, fake)), within=5)
    assert isinstance(error, BadResponse)
    assert "a URL that cannot be parsed" in str(error)


async def test_an_upload_location_with_a_bad_port_is_an_unusable_answer(
    clients: list[RegistryClient],
) -> None:
    """An upload session's Location is the next request's URL, not a redirect."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 202, headers={"Location": "http://127.0.0.1:abc/upload"})

    with serve(handle) as fake:
        client = make(clients, fake)
        blob = b"x" * 10
        error, _ = await failure(client.push_blob("app", Digest.of(blob), blob), within=5)
    assert isinstance(error, BadResponse)
    assert "unusable answer" in str(error)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"5\r\nhello\r\n", b"5\r\nworld\r\n0\r\n\r\n"),  # waiting for the next size line
        (b"5\r\nhello", b"\r\n5\r\nworld\r\n0\r\n\r\n"),  # for the CRLF ending a chunk
        (b"5\r\nhello\r\n5\r\nworld\r\n0\r\nX-T: t\r\n", b"X-U: u\r\n\r\n"),  # in the trailer
    ],
)
async def test_a_pause_between_chunks_past_the_throughput_window_loses_no_step(
    before: bytes, after: bytes
) -> None:
    """The throughput window cancels a wait for bytes; the next read goes on where it stood."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(b"Transfer-Encoding: chunked", body=before))
        await writer.drain()
        await asyncio.sleep(0.35)  # longer than the window
        writer.write(after)
        await writer.drain()

    options = RegistryOptions(
        transport="stdlib", retry=FAST, throughput_window=0.25, min_throughput=1
    )
    with serve(handle) as fake:
        transport = StdlibTransport(fake.host, options)
        try:
            async with transport.send("GET", "/v2/app/blobs/x", long_answer=True) as resp:
                got = b"".join([piece async for piece in transport.chunks(resp)])
        finally:
            await transport.close()
    assert got == b"helloworld"


@pytest.mark.parametrize(
    ("method", "cut", "sent"),
    [
        ("GET", b"", 2),  # closed while idle, nothing answered: sent again on a new connection
        ("PATCH", b"", 1),  # not idempotent: never sent twice
        ("POST", b"", 1),
        ("GET", b"HTTP/1.1 20", 1),  # part of an answer came: the request was taken
        ("GET", b"HTTP/1.1 100 Continue\r\n\r\n", 1),
    ],
)
async def test_a_request_is_replayed_only_when_idempotent_and_unanswered(
    method: str, cut: bytes, sent: int
) -> None:
    """A first request answered on a fresh connection; the second, on that connection kept
    alive, meets ``cut`` and the connection's end."""
    received: list[str] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            for n in itertools.count():
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = re.search(r"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length[1]) if length else 0)
                received.append(head.split(" ", 1)[0])
                if n and head.startswith(method):
                    writer.write(cut)
                    break
                writer.write(answer(b"Content-Length: 2", body=b"{}"))
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    async with server:
        host = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        transport = StdlibTransport(host, RegistryOptions(transport="stdlib", retry=FAST))
        try:
            async with transport.send("GET", "/v2/") as resp:
                await transport.read(resp, "ping")
            with contextlib.suppress(RegistryUnavailable):
                async with transport.send(method, "/v2/app/x", body=b"DATA", retry=False):
                    pass
        finally:
            await transport.close()
    assert received.count(method) - (method == "GET") == sent


@pytest.mark.parametrize("kind", ["stdlib", "aiohttp"])
@pytest.mark.parametrize(
    "shape",
    [
        lambda auth: auth + b"\r\n\r\n",  # as the status line
        lambda auth: b"HTTP/1.1 200 OK\r\n" + auth + b"\r\nContent-Length: 0\r\n\r\n",
        lambda auth: answer(b"Transfer-Encoding: chunked", body=auth.split()[1] + b"\r\n"),
    ],
    ids=["status", "header", "chunk-size"],
)
async def test_an_answer_echoing_the_credential_is_not_quoted(
    kind: Literal["aiohttp", "stdlib"], shape: Callable[[bytes], bytes]
) -> None:
    """A malformed answer made of the request's Authorization value: the error names what was
    wrong without the credential."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        auth = req.headers.get("authorization")
        if auth is None:
            writer.write(b'HTTP/1.1 401 U\r\nWWW-Authenticate: Basic realm="r"\r\n')
            writer.write(b"Content-Length: 0\r\n\r\n")
        else:
            writer.write(shape(auth.encode()))
        await writer.drain()

    secret = Credentials("alice", "hunter2-s3cret")
    options = RegistryOptions(transport=kind, retry=FAST, credentials=secret)
    with serve(handle) as fake:
        client = RegistryClient(fake.host, options)
        try:
            error, _ = await failure(tags(client), within=5)
        finally:
            await client.close()
    message = str(error)
    assert "hunter2" not in message
    assert base64.b64encode(b"alice:hunter2-s3cret").decode()[:12] not in message


async def test_a_body_of_tiny_chunks_is_read_in_blocks() -> None:
    """2 MiB as 2-byte chunks: each read returns every chunk already received (not one chunk,
    an object and a step each), so reading costs about the body in memory and aiohttp's CPU
    (before: +135 MiB and 8.5 s, one piece per chunk)."""
    count = 1 << 20
    body = b"2\r\nxy\r\n" * count + b"0\r\n\r\n"
    calls = 0

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(b"Transfer-Encoding: chunked", body=body))
        await writer.drain()

    with serve(handle) as fake:
        transport = StdlibTransport(fake.host, RegistryOptions(transport="stdlib", retry=FAST))
        try:
            async with transport.send("GET", "/v2/", long_answer=True) as resp:
                began = time.process_time()
                got = bytearray()
                while piece := await resp.content.read(READ_CHUNK):
                    got += piece
                    calls += 1
                took = time.process_time() - began
        finally:
            await transport.close()
    assert got == b"xy" * count
    assert calls < 100  # blocks of what arrived, not 1 Mi pieces
    assert took < 5  # CPU seconds (aiohttp: about 1.3 here)


async def pieces(count: int, every: float = 0.0) -> AsyncIterator[bytes]:
    for _ in range(count):
        await asyncio.sleep(every)
        yield b"x" * 10


async def test_a_slow_stream_is_held_to_the_read_timeout_per_piece() -> None:
    """Eight pieces a quarter second apart: 2 s in all, each write well within the 1 s read
    timeout (the caller's pace is not the registry's)."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 201)

    with serve(handle) as fake:
        options = RegistryOptions(transport="stdlib", retry=FAST, read_timeout=1.0)
        transport = StdlibTransport(fake.host, options)
        try:
            async with transport.send(
                "PUT",
                "/v2/app/blobs/uploads/x",
                headers={"Content-Length": "80"},
                stream=pieces(8, every=0.25),
            ) as resp:
                assert resp.status == 201
        finally:
            await transport.close()


@pytest.mark.parametrize("count", [7, 9])
async def test_a_stream_unlike_its_content_length_is_cut(count: int) -> None:
    """A stream shorter or longer than the Content-Length it was sent with: the request is
    broken off (the registry would wait for more, or read the rest as the next request)."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 201)

    with serve(handle) as fake:
        transport = StdlibTransport(fake.host, RegistryOptions(transport="stdlib", retry=FAST))
        try:
            with pytest.raises(SizeMismatch):
                async with transport.send(
                    "PUT",
                    "/v2/app/blobs/uploads/x",
                    headers={"Content-Length": "80"},
                    stream=pieces(count),
                ):
                    pass
        finally:
            await transport.close()


async def test_a_location_echoing_the_credential_to_another_host_is_not_quoted() -> None:
    """The redirect to another host drops the Authorization header; the error about the
    Location it names (which carries the credential) still blanks it out."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        auth = req.headers.get("authorization")
        if auth is None:
            await send(writer, 401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        else:
            where = f"http://localhost:{fake.host.rsplit(':', 1)[1]}/v2/x {auth}"
            await send(writer, 307, headers={"Location": where})

    options = RegistryOptions(
        transport="stdlib", retry=FAST, credentials=Credentials("alice", "hunter2-s3cret")
    )
    with serve(handle) as fake:
        client = RegistryClient(fake.host, options)
        try:
            error, _ = await failure(client.ping(), within=5)
        finally:
            await client.close()
    assert "a space or control character" in str(error)
    assert base64.b64encode(b"alice:hunter2-s3cret").decode()[:12] not in str(error)


@contextlib.contextmanager
def slow_reader(slow: int, piece: int, every: float) -> Iterator[tuple[str, list[int]]]:
    """A registry on 127.0.0.1 reading the first ``slow`` bytes of one request's body ``piece``
    bytes every ``every`` seconds (a small receive buffer, so the kernel takes little of it
    ahead), the rest at once (what the kernels buffered is not waited for), then answering 201;
    → its host, and the body lengths it received."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before listen()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    received: list[int] = []

    def run() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as stream:
            length = 0
            while (line := stream.readline(MAX_LINE)) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            got = 0
            while got < min(slow, length):
                time.sleep(every)
                got += len(stream.read(min(piece, length - got)))
            got += len(stream.read(length - got))
            received.append(got)
            connection.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        listener.close()
        thread.join(10)


async def test_a_large_body_to_a_slow_reader_is_held_to_the_read_timeout_per_piece() -> None:
    """16 MiB, the first 12 taken 64 KiB every 5 ms: about a second, twice the 0.5 s read
    timeout, while each piece written waits some 20 ms. (Written in one go, the one drain waited
    for most of the body within one read timeout and failed.)"""
    body = bytes(16 * 1024 * 1024)
    with slow_reader(12 * 1024 * 1024, 64 * 1024, every=0.005) as (host, received):
        options = RegistryOptions(transport="stdlib", retry=FAST, read_timeout=0.5)
        transport = StdlibTransport(host, options)
        try:
            started = time.monotonic()
            async with transport.send("PUT", "/v2/app/blobs/uploads/x", body=body) as resp:
                assert resp.status == 201
            assert time.monotonic() - started > 0.5  # the reader was slower than one timeout
        finally:
            await transport.close()
    assert received == [len(body)]
