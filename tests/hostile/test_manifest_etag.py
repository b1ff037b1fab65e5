"""Conditional manifest GETs (``If-None-Match``) against registries that lie or differ.

Distribution's ETag is the quoted digest, and the indexer then asks with ``If-None-Match``
(tests/index/test_catalog_e2e.py shows it against the real registry). Here: a registry whose
ETag is something else is never asked conditionally, and a body answered to a conditional GET
is verified against its digest like any other.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from catalog.oci import mediatypes as mt
from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from catalog.oci.errors import DigestMismatch
from tests.conftest import ClientFactory

CONFIG = {"mediaType": mt.OCI_CONFIG, "digest": str(Digest.of(b"{}")), "size": 2}
MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": CONFIG, "layers": []}
).encode()
DIGEST = Digest.of(MANIFEST)
OTHER = Digest.of(b"another manifest")


class FakeRegistry:
    """One manifest at ``r:v1``; ``etag`` is what it sends as ETag, ``announce`` as
    Docker-Content-Digest; ``conditional`` records each If-None-Match received."""

    def __init__(self, etag: str, announce: Digest = DIGEST) -> None:
        self.etag, self.announce = etag, announce
        self.conditional: list[str | None] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v2/":
            return web.json_response({})
        match = request.headers.get("If-None-Match")
        self.conditional.append(match)
        headers = {
            "Content-Type": mt.OCI_MANIFEST,
            "Docker-Content-Digest": str(self.announce),
            "ETag": self.etag,
        }
        if match is not None and match == self.etag:
            return web.Response(status=304)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(MANIFEST))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=MANIFEST, headers=headers)


def learned(client: RegistryClient) -> bool | None:
    """What the client has learned (a call, so the type checker does not narrow it)."""
    return client.etag_is_digest


@contextlib.asynccontextmanager
async def serving(registry: FakeRegistry) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", registry.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_an_etag_that_is_not_the_digest_turns_conditional_requests_off(
    make_client: ClientFactory,
) -> None:
    registry = FakeRegistry('"opaque-17"')
    async with serving(registry) as host:
        client = make_client(host)
        assert learned(client) is None
        await client.head_manifest("r", "v1")
        assert learned(client) is False
    registry = FakeRegistry(f'"{DIGEST}"')
    async with serving(registry) as host:
        client = make_client(host)
        await client.head_manifest("r", "v1")
        assert learned(client) is True  # the control


async def test_a_conditional_get_answers_none_or_a_verified_manifest(
    make_client: ClientFactory,
) -> None:
    registry = FakeRegistry(f'"{DIGEST}"')
    async with serving(registry) as host:
        client = make_client(host)
        assert await client.get_manifest_unless("r", "v1", DIGEST) is None
        moved = await client.get_manifest_unless("r", "v1", OTHER)
        assert moved is not None
        assert moved.digest == DIGEST
        assert registry.conditional == [f'"{DIGEST}"', f'"{OTHER}"']


async def test_a_body_answered_to_a_conditional_get_is_still_verified(
    make_client: ClientFactory,
) -> None:
    # The registry announces (and tags with) a digest the body does not have.
    registry = FakeRegistry(f'"{OTHER}"', announce=OTHER)
    async with serving(registry) as host:
        client = make_client(host)
        with pytest.raises(DigestMismatch):
            await client.get_manifest_unless("r", "v1", DIGEST)
