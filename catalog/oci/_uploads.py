"""Blob uploads: one PUT when small, else PATCHed chunks resumed where the registry stands.

An upload that fails is cancelled: the registry never commits a blob that was not wholly received
and verified.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from urllib.parse import urlencode

from catalog.oci._http import HTTPTransport, repository_scopes
from catalog.oci.digest import Digest, verify_bytes
from catalog.oci.errors import BadResponse, OCIError, RegistryError, RegistryUnavailable


async def push_blob(
    transport: HTTPTransport,
    repository: str,
    digest: Digest,
    content: bytes | AsyncIterable[bytes],
    size: int | None = None,
    *,
    verified: bool = False,
) -> None:
    """Upload a blob (see :meth:`~catalog.oci.client.RegistryClient.push_blob`)."""
    if isinstance(content, bytes) and not verified:
        verify_bytes(content, digest, size)
    location = await _start(transport, repository)
    try:
        if isinstance(content, bytes) and len(content) <= transport.options.chunk_size:
            await _finish(transport, repository, location, digest, content)
            return
        location = await _upload_chunks(transport, repository, location, content)
        await _finish(transport, repository, location, digest, b"")
    except BaseException:
        with contextlib.suppress(OCIError, *transport.broken):
            await cancel_upload(transport, repository, location)
        raise


async def cancel_upload(transport: HTTPTransport, repository: str, location: str) -> None:
    scopes = repository_scopes(repository, "pull,push")
    async with transport.send("DELETE", location, scopes=scopes):
        pass


async def _start(transport: HTTPTransport, repository: str) -> str:
    url = f"/v2/{repository}/blobs/uploads/"
    scopes = repository_scopes(repository, "pull,push")
    async with transport.send("POST", url, scopes=scopes) as r:
        await transport.expect(r, 202)
        location = r.headers.get("Location")
    if not location:
        raise RegistryError("upload started without a Location", url=url)
    return transport.located(transport.base_url + url, location)


async def _finish(
    transport: HTTPTransport, repository: str, location: str, digest: Digest, body: bytes
) -> None:
    url = location + ("&" if "?" in location else "?") + urlencode({"digest": str(digest)})
    headers = {"Content-Type": "application/octet-stream"}
    scopes = repository_scopes(repository, "pull,push")
    async with transport.send("PUT", url, scopes=scopes, headers=headers, body=body) as r:
        await transport.expect(r, 201)


async def _upload_chunks(
    transport: HTTPTransport,
    repository: str,
    location: str,
    content: bytes | AsyncIterable[bytes],
) -> str:
    """PATCH fixed-size chunks; after a failed PATCH ask the registry where it stands."""
    retry = transport.options.retry
    offset = 0
    async for chunk in _rechunk(content, transport.options.chunk_size):
        failures = 0
        start = offset
        while start < offset + len(chunk):
            piece = chunk[start - offset :]
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(piece) - 1}",
            }
            try:
                async with transport.send(
                    "PATCH",
                    location,
                    scopes=repository_scopes(repository, "pull,push"),
                    headers=headers,
                    body=piece,
                    retry=False,
                ) as r:
                    await transport.expect(r, 202)
                    location = transport.located(location, r.headers.get("Location", location))
                start = offset + len(chunk)
            except (RegistryUnavailable, RegistryError) as exc:
                failures += 1
                if failures >= retry.attempts or (
                    isinstance(exc, RegistryError)
                    and exc.status
                    and exc.status < 500
                    and exc.status != 429
                ):
                    raise
                await asyncio.sleep(retry.backoff(failures))
                start, location = await _status(transport, repository, location)
                if start < offset:
                    raise RegistryError(
                        f"upload lost data (registry at byte {start}, chunk at {offset})",
                        url=location,
                    ) from exc
        offset += len(chunk)
    return location


async def _status(transport: HTTPTransport, repository: str, location: str) -> tuple[int, str]:
    scopes = repository_scopes(repository, "pull,push")
    async with transport.send("GET", location, scopes=scopes) as r:
        await transport.expect(r, 204, 202)
        # Distribution answers "0-0" for an empty session as well as for one byte: read it
        # as empty (no chunk is one byte long), or the resumed upload would skip a byte.
        answer = r.headers.get("Range") or "0--1"
        try:
            end = int(answer.split("-")[-1])
        except ValueError:
            raise BadResponse(
                f"upload status with a Range that is not one: {answer[:100]!r}", url=location
            ) from None
        received = end + 1 if end > 0 else 0
        return received, transport.located(location, r.headers.get("Location", location))


async def _rechunk(content: bytes | AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    if isinstance(content, bytes):
        for start in range(0, len(content), size):
            yield content[start : start + size]
        return
    # Pieces are joined once per chunk: growing and slicing one buffer copied every byte thrice.
    pieces: list[bytes] = []
    held = 0
    async for piece in content:
        pieces.append(piece)
        held += len(piece)
        if held < size:
            continue
        joined = b"".join(pieces)
        for start in range(0, len(joined) - size + 1, size):
            yield joined[start : start + size]
        rest = joined[len(joined) - len(joined) % size :]
        pieces, held = ([rest], len(rest)) if rest else ([], 0)
    if pieces:
        yield b"".join(pieces)
