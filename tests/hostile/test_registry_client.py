"""The registry client against hostile registries: every call ends in seconds, in bounded memory,
with a typed error on one line, and no secret in it or in the log.

Each fake is a raw HTTP server on 127.0.0.1 (tests/hostile/registry_fakes.py).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging
import re
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from catalog.oci.attachments import listed_tags
from catalog.oci.client import RegistryClient, RegistryOptions
from catalog.oci.credentials import Credentials
from catalog.oci.digest import Digest
from catalog.oci.errors import (
    AuthError,
    BadResponse,
    DigestMismatch,
    OCIError,
    RegistryUnavailable,
    Unauthorized,
)
from catalog.oci.manifest import parse_manifest
from catalog.oci.repository import RemoteRepository
from catalog.oci.retry import RetryPolicy
from tests.hostile.registry_fakes import (
    MANIFEST,
    MANIFEST_DIGEST,
    Fake,
    Handler,
    Request,
    endless,
    head,
    send,
    send_json,
    serve,
    trickle,
)

FAST = RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1)
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
TOKEN_PIECE = "tok3n-"  # what a leaked token would look like in a message


class Clients(list[RegistryClient]):
    """The clients a test made, each on the transport the test runs with."""

    def __init__(self, transport: str) -> None:
        super().__init__()
        self.transport = transport


# Every test against both transports: the standard library's keeps every bound aiohttp's has.
@pytest.fixture(params=["aiohttp", "stdlib"])
async def clients(request: pytest.FixtureRequest) -> AsyncIterator[Clients]:
    made = Clients(request.param)
    yield made
    for client in made:
        await client.close()


def make(clients: list[RegistryClient], fake: Fake, **options: object) -> RegistryClient:
    assert isinstance(clients, Clients)
    options.setdefault("retry", FAST)
    options["transport"] = clients.transport
    client = RegistryClient(fake.host, RegistryOptions(**options))  # type: ignore[arg-type]
    clients.append(client)
    return client


async def failure(call: object, within: float) -> tuple[OCIError, float]:
    """The error ``call`` (an awaitable) ends with, and how long it took; it must take less
    than ``within`` seconds and say what was wrong on one line."""
    began = time.monotonic()
    with pytest.raises(OCIError) as caught:
        await asyncio.wait_for(call, within)  # type: ignore[arg-type]
    took = time.monotonic() - began
    assert took < within
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 600
    return caught.value, took


async def listing(client: RegistryClient, what: str = "tags") -> list[str]:
    if what == "catalog":
        return [name async for name in client.catalog()]
    return [tag async for tag in client.tags("app")]


# -- bodies without end, bombs, broken bodies ------------------------------------------------------


async def test_an_endless_catalog_is_cut_at_the_cap(clients: list[RegistryClient]) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await endless(writer, b'{"repositories": [', b'"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ')

    with serve(handle) as fake:
        tracemalloc.start()
        try:
            error, _ = await failure(listing(make(clients, fake), "catalog"), within=10)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"measured: traced peak {peak / 2**20:.1f} MiB")
    assert isinstance(error, BadResponse)
    assert "repository list is larger than the 8388608-byte limit" in str(error)
    assert peak < 48 * 1024 * 1024  # the 8 MiB cap, a few copies of it, not the stream


async def test_a_gzip_bomb_is_never_inflated(clients: list[RegistryClient]) -> None:
    bomb = gzip.compress(b" " * (256 * 1024 * 1024), compresslevel=9)  # ~250 KB → 256 MiB

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(
            writer, 200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )

    with serve(handle) as fake:
        tracemalloc.start()
        try:
            error, _ = await failure(listing(make(clients, fake)), within=10)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"measured: traced peak {peak / 2**20:.1f} MiB")
    assert isinstance(error, BadResponse)
    assert "the tag list is refused: not valid JSON ('utf-8' codec" in str(error)
    assert peak < 16 * 1024 * 1024


async def test_an_array_bomb_is_refused_before_it_is_built(clients: list[RegistryClient]) -> None:
    """8 MiB of ``[],`` (under the 8 MiB cap): json.loads built 2.8 million lists from it
    (181 MiB, 1.63 s); the bounded decoder counts the brackets and refuses it unbuilt."""
    body = b"[" + b"[]," * (8 * 1024 * 1024 // 3 - 1) + b"[]]"
    assert len(body) <= 8 * 1024 * 1024

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 200, body, {"Content-Type": "application/json"})

    with serve(handle) as fake:
        client = make(clients, fake)
        tracemalloc.start()
        try:
            error, took = await failure(listing(client), within=5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"measured: {took:.2f} s, traced peak {peak / 2**20:.1f} MiB")
    assert isinstance(error, BadResponse)
    assert "the tag list is refused: more than 1000000 JSON values" in str(error)
    assert took < 1.0
    assert peak < 40 * 1024 * 1024  # the body read (8 MiB) and its joined copy, nothing built


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # Content-Length promises more than comes, then the connection closes.
        (head(200, {"Content-Type": "application/json"}, 1000) + b'{"tags": ["v1"', "broke off"),
        # Content-Length promises less: the JSON is cut in the middle (or, when the rest comes
        # in the same packet, aiohttp refuses the answer whole).
        (
            head(200, {"Content-Type": "application/json"}, 10) + b'{"tags": ["v1", "v2"]}',
            "not valid JSON|unusable answer: ClientResponseError: Data after",
        ),
        # Nested deeper than the decoder goes, well under the byte cap.
        (
            head(200, {}, 400_000) + b"[" * 200_000 + b"]" * 200_000,
            "refused: JSON nested deeper than 64 levels",
        ),
        (head(200, {}, 5) + b"[1,2]", r"is not \{'tags': \[names\]\}"),
        (head(200, {}, 24) + b'{"tags": ["v1", {"x":1}]}'[:24], "refused: not valid JSON"),
        (head(200, {}, 23) + b'{"tags": ["v1", 12345]}', r"is not \{'tags': \[names\]\}"),
        (head(200, {}, 4) + b"\xff\xfe\x00[", "refused: not valid JSON"),
    ],
    ids=[
        "long-content-length",
        "short-content-length",
        "deep",
        "not-a-dict",
        "cut",
        "not-str",
        "utf8",
    ],
)
async def test_a_broken_tag_list_is_a_typed_error(
    clients: list[RegistryClient], answer: bytes, expected: str
) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()

    with serve(handle) as fake:
        error, _ = await failure(listing(make(clients, fake)), within=5)
    assert isinstance(error, RegistryUnavailable)
    assert re.search(expected, str(error))


async def test_a_reset_after_the_headers_is_a_typed_error(clients: list[RegistryClient]) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head(200, {"Content-Type": "application/json"}, 100_000) + b'{"tags": [')
        await writer.drain()
        writer.transport.abort()  # RST, not FIN

    with serve(handle) as fake:
        error, _ = await failure(listing(make(clients, fake)), within=5)
    assert isinstance(error, RegistryUnavailable)
    assert "the tag list broke off after" in str(error)


# -- time: slow loris, trickles -------------------------------------------------------------------


async def test_a_slow_loris_body_meets_the_request_deadline(clients: list[RegistryClient]) -> None:
    body = b'{"name": "app", "tags": ["v1"]}'

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await trickle(writer, head(200, {}, len(body)), body, every=2.0)

    with serve(handle) as fake:
        client = make(clients, fake, request_timeout=3.0)
        error, took = await failure(listing(client), within=6)
    assert isinstance(error, RegistryUnavailable)
    assert "timed out" in str(error)
    assert took >= 3.0


async def test_slow_loris_headers_meet_the_request_deadline(clients: list[RegistryClient]) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await trickle(writer, b"", head(200, {}, 2) + b"{}", every=2.0)

    with serve(handle) as fake:
        client = make(clients, fake, request_timeout=2.0)
        error, took = await failure(client.ping(), within=4)
    assert isinstance(error, RegistryUnavailable)
    assert "no answer within 2 s" in str(error)
    assert took >= 2.0
    assert len(fake.requests) == 1  # not retried: a second attempt would wait as long again


BLOB = b"x" * 1000
BLOB_DIGEST = Digest.of(BLOB)


async def test_a_trickling_blob_is_dropped_under_the_throughput_floor(
    clients: list[RegistryClient],
) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await trickle(writer, head(200, {}, len(BLOB)), BLOB, every=2.0)

    with serve(handle) as fake:
        # Neither limit of the plain kind fires: each byte comes well within the read timeout.
        client = make(clients, fake, min_throughput=1024, throughput_window=3.0)
        error, took = await failure(client.get_blob("app", BLOB_DIGEST, len(BLOB)), within=12)
    assert isinstance(error, RegistryUnavailable)
    assert "download broke 2 times" in str(error)
    assert "under the floor of 1024 bytes/s" in str(error)
    assert len(fake.requests) == 2  # dropped, resumed once, dropped again
    assert took >= 6.0


async def test_a_slow_consumer_does_not_trip_the_floor(clients: list[RegistryClient]) -> None:
    """Only time spent waiting for bytes counts: a reader busy for longer than the window
    between pieces still gets a fast blob whole."""
    big = bytes(range(256)) * (48 * 1024)  # 12 MiB: three pieces
    digest = Digest.of(big)

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 200, big)

    with serve(handle) as fake:
        client = make(clients, fake, min_throughput=1024 * 1024, throughput_window=0.5)
        received = 0
        async for chunk in client.blob_chunks("app", digest, len(big)):
            received += len(chunk)
            await asyncio.sleep(0.8)
    assert received == len(big)
    assert len(fake.requests) == 1


# -- loops -----------------------------------------------------------------------------------------


async def test_a_link_to_itself_stops_after_one_page(clients: list[RegistryClient]) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send_json(writer, {"tags": ["v1"]}, {"Link": f'<{req.target}>; rel="next"'})

    with serve(handle) as fake:
        error, _ = await failure(listing(make(clients, fake)), within=5)
    assert isinstance(error, BadResponse)
    assert "tag list pages loop" in str(error)
    assert len(fake.requests) == 1


async def test_a_listing_without_end_stops_at_the_page_cap(clients: list[RegistryClient]) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        page = len(fake.requests)
        link = f'</v2/_catalog?n=100&last=r{page}>; rel="next"'
        await send_json(writer, {"repositories": [f"r{page}"]}, {"Link": link})

    with serve(handle) as fake:
        error, _ = await failure(listing(make(clients, fake, max_pages=20), "catalog"), within=10)
    assert isinstance(error, BadResponse)
    assert "goes on past 20 pages" in str(error)
    assert len(fake.requests) == 20


async def test_a_redirect_loop_is_a_typed_error(clients: list[RegistryClient]) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 302, headers={"Location": req.target})

    with serve(handle) as fake:
        error, _ = await failure(make(clients, fake).ping(), within=5)
    assert isinstance(error, BadResponse)
    assert "redirect loop" in str(error)
    assert len(fake.requests) <= 11


# -- tokens and credentials never leak -------------------------------------------------------------


def token_registry(token_answer: Handler, registry_echo: bool = True) -> Handler:
    """A registry asking for a bearer token from its own ``/token``, and refusing whatever
    it is given with an error that quotes the Authorization header back."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        if req.path == "/token":
            await token_answer(req, writer)
            return
        host = req.headers["host"]
        sent = req.headers.get("authorization", "none") if registry_echo else "?"
        body = f'{{"errors": [{{"code": "UNAUTHORIZED", "message": "refused {sent}"}}]}}'
        challenge = f'Bearer realm="http://{host}/token",service="fake"'
        await send(writer, 401, body.encode(), {"WWW-Authenticate": challenge})

    return handle


@pytest.fixture
def log_everything(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def test_a_100_mb_token_is_refused_unread(
    clients: list[RegistryClient], log_everything: pytest.LogCaptureFixture
) -> None:
    size = 100 * 1024 * 1024
    opening, closing = b'{"token": "', b'"}'

    async def answer(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head(200, {"Content-Type": "application/json"}, len(opening) + size + 2))
        writer.write(opening)
        block = TOKEN_PIECE.encode() * (64 * 1024 // len(TOKEN_PIECE))
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
        writer.write(closing)

    with serve(token_registry(answer)) as fake:
        tracemalloc.start()
        try:
            error, _ = await failure(make(clients, fake).ping(), within=5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"measured: traced peak {peak / 2**20:.1f} MiB")
    assert isinstance(error, AuthError)
    assert "answered more than 135168 bytes; refused" in str(error)
    assert TOKEN_PIECE not in str(error)
    assert TOKEN_PIECE not in log_everything.text
    assert peak < 16 * 1024 * 1024
    # Never sent back: no request carried it.
    assert [r.path for r in fake.requests] == ["/v2/", "/token"]


async def test_a_token_over_64_kib_is_refused(clients: list[RegistryClient]) -> None:
    async def answer(req: Request, writer: asyncio.StreamWriter) -> None:
        await send_json(writer, {"token": TOKEN_PIECE * (70 * 1024 // len(TOKEN_PIECE))})

    with serve(token_registry(answer)) as fake:
        error, _ = await failure(make(clients, fake).ping(), within=5)
    assert isinstance(error, AuthError)
    assert "over the 65536 limit; refused" in str(error)
    assert TOKEN_PIECE not in str(error)


async def test_a_rejected_token_never_appears_in_the_error_or_the_log(
    clients: list[RegistryClient], log_everything: pytest.LogCaptureFixture
) -> None:
    secret = TOKEN_PIECE + "0123456789abcdef"

    async def answer(req: Request, writer: asyncio.StreamWriter) -> None:
        await send_json(writer, {"token": secret, "expires_in": 300})

    with serve(token_registry(answer)) as fake:
        error, _ = await failure(make(clients, fake).ping(), within=5)
    assert isinstance(error, Unauthorized)
    assert "refused Bearer ***" in str(error)  # the registry's echo, blanked
    assert secret not in str(error)
    assert TOKEN_PIECE not in log_everything.text
    assert fake.requests[-1].headers["authorization"] == f"Bearer {secret}"
    assert [r.path for r in fake.requests] == ["/v2/", "/token", "/v2/"]


async def test_a_rejected_password_never_appears_in_the_error(
    clients: list[RegistryClient],
) -> None:
    password = "pa55-" + TOKEN_PIECE

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        sent = req.headers.get("authorization", "")
        decoded = base64.b64decode(sent.partition(" ")[2] or "").decode()
        body = f'{{"errors": [{{"code": "UNAUTHORIZED", "message": "no {sent} ({decoded})"}}]}}'
        await send(writer, 401, body.encode(), {"WWW-Authenticate": 'Basic realm="fake"'})

    with serve(handle) as fake:
        client = make(clients, fake, credentials=Credentials("alice", password))
        error, _ = await failure(client.ping(), within=5)
    assert isinstance(error, Unauthorized)
    assert password not in str(error)
    assert "no Basic *** (alice:***)" in str(error)


async def test_a_malformed_answer_cut_mid_password_shows_no_piece_of_it(
    clients: list[RegistryClient],
) -> None:
    """aiohttp's parser error quotes the bad line as far as the read that failed: an answer
    echoing the credential, sent in two pieces, had it quote the first part of the secret,
    which no longer matched the whole secret being blanked."""
    password = "pa55-" + TOKEN_PIECE + "0123456789abcdef0123456789"

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        sent = req.headers.get("authorization", "")
        if not sent:
            await send(writer, 401, b"", {"WWW-Authenticate": 'Basic realm="fake"'})
            return
        echo = f"{sent} ({base64.b64decode(sent.partition(' ')[2]).decode()})".encode()
        writer.write(b"HTTP/1.1 200 OK\r\n" + echo[:30])  # not a header line: refused
        await writer.drain()
        await asyncio.sleep(0.2)  # the client reads the first piece alone
        writer.write(echo[30:] + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    with serve(handle) as fake:
        client = make(clients, fake, credentials=Credentials("alice", password))
        error, _ = await failure(client.ping(), within=10)
    assert isinstance(error, BadResponse)
    encoded = base64.b64encode(f"alice:{password}".encode()).decode()
    for secret in (password, encoded):
        pieces = {secret[i : i + 4] for i in range(len(secret) - 3)}
        assert not [piece for piece in pieces if piece in str(error)], str(error)


async def test_a_malformed_digest_header_is_the_registrys_fault(
    clients: list[RegistryClient],
) -> None:
    bogus = {"Content-Type": MANIFEST_MEDIA_TYPE, "Docker-Content-Digest": "sha256:nothex\x7f"}

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        if req.method == "HEAD":
            writer.write(head(200, bogus, len(MANIFEST)))
        elif req.method == "PUT":
            await send(writer, 201, b"", bogus)
        else:
            await send(writer, 200, MANIFEST, bogus)

    with serve(handle) as fake:
        client = make(clients, fake)
        pushed = parse_manifest(MANIFEST)
        for call in (
            client.get_manifest("app", "v1"),
            client.head_manifest("app", "v1"),
            client.put_manifest("app", pushed, "v1"),
        ):
            error, _ = await failure(call, within=5)
            assert isinstance(error, BadResponse)
            assert "Docker-Content-Digest 'sha256:nothex\\x7f' is not a digest" in str(error)


async def test_a_content_length_that_is_no_number_is_no_crash(
    clients: list[RegistryClient],
) -> None:
    # '²' (latin-1, as headers are read) passes str.isdigit(); 5,000 digits pass it too but
    # not int(). Either transport answers with the manifest or a typed error, never ValueError.
    for length in ("\xb2".encode("latin-1"), b"9" * 5000):

        async def handle(
            req: Request, writer: asyncio.StreamWriter, length: bytes = length
        ) -> None:
            writer.write(
                b"HTTP/1.1 200 X\r\nConnection: close\r\nContent-Type: "
                + MANIFEST_MEDIA_TYPE.encode()
                + b"\r\nContent-Length: "
                + length
                + b"\r\n\r\n"
                + MANIFEST
            )
            await writer.drain()

        with serve(handle) as fake:
            client = make(clients, fake)
            try:
                got: object = (await asyncio.wait_for(client.get_manifest("app", "v1"), 5)).raw
            except OCIError as error:
                got = error
            assert got == MANIFEST or (isinstance(got, OCIError) and "\n" not in str(got))


async def test_a_digest_asked_for_is_the_digest_checked_whatever_is_announced(
    clients: list[RegistryClient],
) -> None:
    # The registry serves (and announces, consistently) another manifest than the one asked
    # for by digest, and acknowledges a push with another manifest's digest.
    other = Digest.of(b"another manifest")
    answer = {"Content-Type": MANIFEST_MEDIA_TYPE, "Docker-Content-Digest": MANIFEST_DIGEST}

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        if req.method == "PUT":
            await send(writer, 201, b"", {"Docker-Content-Digest": str(other)})
        else:
            await send(writer, 200, MANIFEST, answer)

    with serve(handle) as fake:
        client = make(clients, fake)
        with pytest.raises(DigestMismatch):
            await client.get_manifest("app", str(other))
        with pytest.raises(DigestMismatch):
            await client.put_manifest("app", parse_manifest(MANIFEST), "v1")
        # The controls: by its own digest, in either algorithm, and by tag.
        sha512 = Digest.of(MANIFEST, "sha512")
        assert (await client.get_manifest("app", str(sha512))).digest == sha512
        assert str((await client.get_manifest("app", "v1")).digest) == MANIFEST_DIGEST


@pytest.mark.parametrize(
    "answer",
    [
        b"[" * 100_000,
        b'{"token": "' + TOKEN_PIECE.encode() + b'\\n"}',
        b"\xff" + TOKEN_PIECE.encode(),
    ],
    ids=["deep", "not-a-header-value", "not-json"],
)
async def test_a_malformed_token_answer_is_refused_unquoted(
    clients: list[RegistryClient], answer: bytes
) -> None:
    async def token(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 200, answer, {"Content-Type": "application/json"})

    with serve(token_registry(token)) as fake:
        error, _ = await failure(make(clients, fake).ping(), within=5)
    assert isinstance(error, AuthError)
    assert TOKEN_PIECE not in str(error)
    assert [r.path for r in fake.requests] == ["/v2/", "/token"]


# -- redirects -------------------------------------------------------------------------------------


async def test_a_blob_redirected_elsewhere_gets_no_credentials(
    clients: list[RegistryClient],
) -> None:
    """A registry sends blob downloads to its storage (another host): the blob comes from
    there, verified, and the registry's credentials stay with the registry."""
    password = "pa55-" + TOKEN_PIECE

    async def storage(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 200, BLOB)

    with serve(storage) as store:

        async def registry(req: Request, writer: asyncio.StreamWriter) -> None:
            if "authorization" not in req.headers:
                await send(writer, 401, b"", {"WWW-Authenticate": 'Basic realm="fake"'})
                return
            url = f"http://{store.host}/blobs/{BLOB_DIGEST}?signed=1"
            await send(writer, 307, b"", {"Location": url})

        with serve(registry) as fake:
            client = make(clients, fake, credentials=Credentials("alice", password))
            assert await client.get_blob("app", BLOB_DIGEST, len(BLOB)) == BLOB
    assert fake.requests[-1].headers["authorization"].startswith("Basic ")
    assert [r.target for r in store.requests] == [f"/blobs/{BLOB_DIGEST}?signed=1"]
    assert "authorization" not in store.requests[0].headers


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",  # metadata service
        "http://[64:ff9b::a9fe:a9fe]/latest/",  # the same through NAT64
        "http://10.0.0.9:8080/admin",  # a private network the registry (loopback) is not on
    ],
)
async def test_a_redirect_into_another_network_is_refused_unsent(
    clients: list[RegistryClient], target: str
) -> None:
    """A registry must not send the client's next request into a network it is not on: the
    redirect is refused before anything is sent there (these addresses would take the
    connect timeout, or answer)."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 307, headers={"Location": target})

    with serve(handle) as fake:
        client = make(clients, fake, connect_timeout=30.0)
        error, took = await failure(client.get_blob("app", BLOB_DIGEST), within=5)
    assert isinstance(error, BadResponse)
    assert "refused, a redirect may go only to a public host" in str(error)
    assert len(fake.requests) == 1  # not retried
    assert took < 2


async def test_a_redirect_by_a_uri_header_is_not_followed_unchecked(
    clients: list[RegistryClient],
) -> None:
    """aiohttp follows ``URI`` where ``Location`` is missing: checked as a Location is (the
    standard library's transport follows Location only: the 302 is the answer)."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 302, headers={"URI": "http://169.254.169.254/latest/"})

    with serve(handle) as fake:
        client = make(clients, fake, connect_timeout=30.0)
        error, took = await failure(client.get_blob("app", BLOB_DIGEST), within=5)
    assert isinstance(clients, Clients)
    if clients.transport == "aiohttp":
        assert isinstance(error, BadResponse)
        assert "refused, a redirect may go only to a public host" in str(error)
    else:
        assert "HTTP 302" in str(error)
    assert len(fake.requests) == 1
    assert took < 2


METADATA = "http://169.254.169.254/latest/meta-data/"


async def test_a_next_page_in_another_network_is_refused_unasked(
    clients: list[RegistryClient],
) -> None:
    """The next page is asked with the registry's credentials: its Link is a redirect."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send_json(writer, {"tags": ["v1"]}, {"Link": f'<{METADATA}>; rel="next"'})

    with serve(handle) as fake:
        error, _ = await failure(listing(make(clients, fake)), within=5)
    assert isinstance(error, BadResponse)
    assert "redirected to '169.254.169.254': refused" in str(error)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("mount", [False, True])
async def test_an_upload_location_in_another_network_is_refused_unsent(
    clients: list[RegistryClient], mount: bool
) -> None:
    """An upload session's Location is where the bytes and the credentials go next (a mount
    that opens a session instead is cancelled there): refused in another network."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 202, headers={"Location": METADATA + "upload?state=1"})

    with serve(handle) as fake:
        client = make(clients, fake)
        call = (
            client.mount_blob("app", BLOB_DIGEST, "other")
            if mount
            else client.push_blob("app", BLOB_DIGEST, BLOB)
        )
        error, _ = await failure(call, within=5)
    assert isinstance(error, BadResponse)
    assert "redirected to '169.254.169.254': refused" in str(error)
    assert [r.method for r in fake.requests] == ["POST"]


async def test_a_redirect_within_the_registrys_network_is_followed(
    clients: list[RegistryClient],
) -> None:
    """Loopback to loopback (another port, plain HTTP from plain HTTP) is the registry's own
    network: followed."""

    async def storage(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 200, BLOB)

    with serve(storage) as store:

        async def registry(req: Request, writer: asyncio.StreamWriter) -> None:
            location = f"http://localhost:{store.host.rsplit(':', 1)[1]}/blob"
            await send(writer, 302, headers={"Location": location})

        with serve(registry) as fake:
            assert await make(clients, fake).get_blob("app", BLOB_DIGEST, len(BLOB)) == BLOB
    assert [r.target for r in store.requests] == ["/blob"]


async def test_a_redirect_out_of_http_is_a_typed_error(clients: list[RegistryClient]) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 302, headers={"Location": "file:///etc/passwd"})

    with serve(handle) as fake:
        error, _ = await failure(make(clients, fake).get_blob("app", BLOB_DIGEST), within=5)
    assert isinstance(error, BadResponse)
    assert "unusable answer" in str(error)
    assert len(fake.requests) == 1


async def test_an_oversized_header_is_a_typed_error(clients: list[RegistryClient]) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * 200_000 + b"\r\n\r\n")
        await writer.drain()

    with serve(handle) as fake:
        error, _ = await failure(make(clients, fake).ping(), within=5)
    assert isinstance(error, BadResponse)
    assert "unusable answer" in str(error)
    assert len(fake.requests) == 1  # not retried: it would only come again


async def test_a_tag_listing_for_attachments_is_bounded_in_time(
    clients: list[RegistryClient],
) -> None:
    """A registry paging one tag at a time (each page quick, each link new) would have `tree`
    send thousands of requests before its walk: the listing gives up at its deadline, and the
    walk asks for each cosign tag instead."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        page = len(fake.requests)
        link = f'</v2/r/tags/list?n=1000&last=t{page}>; rel="next"'
        await send_json(writer, {"name": "r", "tags": [f"t{page}"]}, {"Link": link})

    with serve(handle) as fake:
        client = make(clients, fake)
        started = time.monotonic()
        assert await listed_tags(RemoteRepository(client, "r"), within=0.5) is None
        took = time.monotonic() - started
    assert took < 3
    assert 1 < len(fake.requests) < 10_000  # it paged, and stopped long before the page cap


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("catalog", rb'{"repositories": ["app", "\ud800x"]}'),
        ("tags", rb'{"name": "app", "tags": ["v1", "x\udfff"]}'),
    ],
)
async def test_a_listing_with_a_lone_surrogate_is_refused(
    clients: list[RegistryClient], what: str, body: bytes
) -> None:
    """JSON may escape half a surrogate pair: such a name is no Unicode text, and RE2 (a
    rule's filter, a policy) would raise UnicodeEncodeError on it, far from the listing."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 200, body, {"Content-Type": "application/json"})

    with serve(handle) as fake:
        error, _ = await failure(listing(make(clients, fake), what), within=5)
    assert isinstance(error, BadResponse)
    assert "invalid name (a lone surrogate" in str(error)
