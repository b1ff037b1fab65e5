"""What only the transports see: a streamed request body (sent once, never replayed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode, urljoin

from catalog.oci.digest import Digest
from tests.conftest import ClientFactory
from tests.harness.registry import RunningRegistry


async def test_a_streamed_body_arrives_whole(
    registry: RunningRegistry, make_client: ClientFactory
) -> None:
    client = make_client(registry.host)
    pieces = [b"a" * 70_000, b"", b"b" * 3, b"c" * 1_000_000]
    digest = Digest.of(b"".join(pieces))

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    transport = client._transport
    scopes = ["repository:stream/blob:pull,push"]
    async with transport.send("POST", "/v2/stream/blob/blobs/uploads/", scopes=scopes) as r:
        await transport.expect(r, 202)
        location = urljoin(transport.base_url + "/", r.headers.get("Location") or "")
    url = location + ("&" if "?" in location else "?") + urlencode({"digest": str(digest)})
    headers = {"Content-Type": "application/octet-stream"}
    async with transport.send("PUT", url, scopes=scopes, headers=headers, stream=body()) as r:
        await transport.expect(r, 201)
    assert await client.head_blob("stream/blob", digest) == sum(map(len, pieces))
    assert await client.get_blob("stream/blob", digest) == b"".join(pieces)
