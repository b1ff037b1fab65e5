"""An async client for the OCI distribution API (and Docker Registry v2's ``_catalog``).

One :class:`RegistryClient` per registry host: it owns the connection pool, the concurrency limit,
authentication state and the retry policy. Every byte it hands out has been checked against its
digest (blobs: by the end of the stream; consumers commit nothing until the stream ends cleanly).

This module holds the distribution endpoints (catalog, tags, manifests, blobs); the client composes
them with ``_transport`` (auth, retries, the limit), ``_uploads`` (chunked blob uploads) and
``_referrers`` (the referrers API and its fallback tag index).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from urllib.parse import urlencode

from catalog.oci import mediatypes as mt
from catalog.oci._http import HTTPTransport, describe, off_loop, repository_scopes
from catalog.oci._referrers import Referrers, ReferrersEndpoint, fallback_index
from catalog.oci.credentials import CredentialStore
from catalog.oci.digest import Digest, StreamVerifier, as_digest
from catalog.oci.errors import (
    BadResponse,
    DigestMismatch,
    ManifestTooLarge,
    NotInRegistry,
    RegistryUnavailable,
)
from catalog.oci.manifest import Descriptor, Manifest, parse_manifest
from catalog.oci.options import RegistryOptions

__all__ = ["Referrers", "RegistryClient", "RegistryOptions", "fallback_index"]


class RegistryClient:
    """The distribution API of one registry host. Use as ``async with RegistryClient(...)``."""

    def __init__(
        self,
        host: str,
        options: RegistryOptions | None = None,
        credential_store: CredentialStore | None = None,
    ) -> None:
        self.host = host
        self.options = options or RegistryOptions()
        self._transport = _transport_for(host, self.options, credential_store)
        self._referrers = ReferrersEndpoint(self._transport, self.get_manifest, self.put_manifest)
        # Whether the registry's manifest ETag is the quoted digest (Distribution's is): then
        # ``get_manifest_unless`` may ask with ``If-None-Match``. Learned from its answers (None
        # until one has told).
        self.etag_is_digest: bool | None = None

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def has_referrers_api(self) -> bool | None:
        """Whether the registry has the referrers API (None until a lookup has told)."""
        return self._referrers.has_api

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    # -- discovery -------------------------------------------------------------------------

    async def ping(self) -> None:
        """Check that the host speaks the distribution API and that we may use it."""
        async with self._transport.send("GET", "/v2/") as resp:
            await self._transport.expect(resp, 200)

    async def _pages(
        self, path: str, key: str, scopes: list[str], page_size: int
    ) -> AsyncIterator[str]:
        what = "repository list" if key == "repositories" else "tag list"
        url: str | None = f"{path}?n={page_size}"
        seen: set[str] = set()
        while url:
            async with self._transport.send("GET", url, scopes=scopes) as resp:
                await self._transport.expect(resp, 200)
                doc = await self._transport.read_json(resp, what)
                items = doc.get(key) if isinstance(doc, dict) else ()
                if not isinstance(items, list | None) or not all(
                    isinstance(item, str) for item in items or ()
                ):
                    raise BadResponse(
                        f"{self.host}: the {what} is not {{{key!r}: [names]}}", url=str(resp.url)
                    )
                if not _encodable(items or ()):
                    # A JSON escape may name a lone surrogate, which RE2 (rules, policies)
                    # and the database cannot take: refused here, once, on one line.
                    raise BadResponse(
                        f"{self.host}: the {what} holds an invalid name (a lone surrogate,"
                        " not Unicode text)",
                        url=str(resp.url),
                    )
                url = self._transport.next_page(resp, seen, what)
            for item in items or ():
                yield item

    def catalog(self, page_size: int = 100) -> AsyncIterator[str]:
        """Every repository name, following ``Link`` pagination."""
        return self._pages("/v2/_catalog", "repositories", ["registry:catalog:*"], page_size)

    def tags(self, repository: str, page_size: int = 1000) -> AsyncIterator[str]:
        """Every tag of a repository, following ``Link`` pagination when the registry pages."""
        return self._pages(
            f"/v2/{repository}/tags/list",
            "tags",
            repository_scopes(repository, "pull"),
            page_size,
        )

    # -- manifests -------------------------------------------------------------------------

    async def head_manifest(self, repository: str, ref: str) -> Descriptor | None:
        """The descriptor a tag or digest resolves to; None when there is no such manifest."""
        url = f"/v2/{repository}/manifests/{ref}"
        headers = {"Accept": mt.MANIFEST_ACCEPT}
        scopes = repository_scopes(repository, "pull")
        async with self._transport.send("HEAD", url, scopes=scopes, headers=headers) as r:
            if r.status == 404:
                return None
            await self._transport.expect(r, 200)
            digest = self._transport.announced_digest(r)
            self._learn_etag(r.headers.get("ETag"), digest)
            media_type = (r.headers.get("Content-Type") or "").split(";")[0]
            length = r.headers.get("Content-Length")
        if not digest or not length or not length.isdigit() or media_type not in mt.MANIFESTS:
            # Some registries omit headers on HEAD: the GET tells the whole truth.
            try:
                return (await self.get_manifest(repository, ref)).descriptor()
            except NotInRegistry:
                return None
        return Descriptor(media_type, digest, int(length))

    async def get_manifest(self, repository: str, ref: str) -> Manifest:
        """Fetch, size-limit, verify and parse a manifest by tag or digest."""
        manifest = await self._get_manifest(repository, ref, None)
        assert manifest is not None  # only a conditional request is answered "not modified"
        return manifest

    async def get_manifest_unless(
        self, repository: str, ref: str, digest: Digest
    ) -> Manifest | None:
        """The manifest ``ref`` names, or None when that is still ``digest`` (the registry
        answered ``304 Not Modified`` to ``If-None-Match``): one request whether or not a tag
        moved, where a HEAD and then a GET take two when it did. Meant for registries whose
        ETag is the quoted digest (``etag_is_digest``); elsewhere it is a plain GET."""
        return await self._get_manifest(repository, ref, digest)

    async def _get_manifest(
        self, repository: str, ref: str, unless: Digest | None
    ) -> Manifest | None:
        limit = self.options.manifest_limit
        # By digest, the answer must have that digest, whatever the registry announces.
        asked = as_digest(ref)
        url = f"/v2/{repository}/manifests/{ref}"
        headers = {"Accept": mt.MANIFEST_ACCEPT}
        if unless is not None:
            headers["If-None-Match"] = f'"{unless}"'
        scopes = repository_scopes(repository, "pull")
        async with self._transport.send("GET", url, scopes=scopes, headers=headers) as r:
            if unless is not None and r.status == 304:
                return None
            await self._transport.expect(r, 200)
            raw = await self._transport.read(r, "manifest", limit, ManifestTooLarge)
            content_type = r.headers.get("Content-Type")
            announced = self._transport.announced_digest(r)
            self._learn_etag(r.headers.get("ETag"), announced)
        # Hashing and decoding up to manifest_limit (4 MiB) bytes: on a thread when large.
        return await off_loop(len(raw), _verified_manifest, raw, content_type, asked or announced)

    def _learn_etag(self, etag: str | None, digest: Digest | None) -> None:
        if etag is not None and digest is not None:
            self.etag_is_digest = etag == f'"{digest}"'

    async def put_manifest(
        self,
        repository: str,
        manifest: Manifest,
        tag: str | None = None,
        *,
        fallback_index: bool = True,
    ) -> None:
        """Push manifest bytes as they are (by tag, else by digest).

        When the manifest has a ``subject`` and the registry does not answer ``OCI-Subject``, the
        fallback index of the subject is updated, as distribution-spec 1.1 asks of clients.
        ``fallback_index=False`` leaves that index to the caller, who writes it once for many
        referrers (replication copies the source's index as it is).
        """
        ref = tag or str(manifest.digest)
        url = f"/v2/{repository}/manifests/{ref}"
        headers = {"Content-Type": manifest.media_type}
        scopes = repository_scopes(repository, "pull,push")
        async with self._transport.send(
            "PUT", url, scopes=scopes, headers=headers, body=manifest.raw
        ) as r:
            await self._transport.expect(r, 201, 200)
            stored = self._transport.announced_digest(r)
            oci_subject = r.headers.get("OCI-Subject")
        if stored is not None and stored != _digest_in(manifest, stored.algorithm):
            raise DigestMismatch(str(manifest.digest), str(stored), "pushed manifest")
        if manifest.subject is not None and not oci_subject and fallback_index:
            await self._referrers.add_to_fallback_index(
                repository, manifest.subject.digest, manifest
            )

    async def delete_manifest(self, repository: str, digest: Digest) -> None:
        url = f"/v2/{repository}/manifests/{digest}"
        scopes = repository_scopes(repository, "delete")
        async with self._transport.send("DELETE", url, scopes=scopes) as r:
            await self._transport.expect(r, 202, 200)

    # -- referrers -------------------------------------------------------------------------

    async def referrers(
        self,
        repository: str,
        digest: Digest,
        artifact_type: str | None = None,
        fallback: bool = True,
    ) -> Referrers:
        """The subject's referrers: the referrers API, else the ``<alg>-<hex>`` fallback tag.

        ``fallback=False`` asks the API only (scheme ``none`` when the registry lacks it): for
        callers that read fallback tags from a tag listing anyway.
        """
        return await self._referrers.find(repository, digest, artifact_type, fallback)

    # -- blobs -----------------------------------------------------------------------------

    async def head_blob(self, repository: str, digest: Digest) -> int | None:
        """The blob's size, or None when the repository does not have it."""
        url = f"/v2/{repository}/blobs/{digest}"
        scopes = repository_scopes(repository, "pull")
        async with self._transport.send("HEAD", url, scopes=scopes) as r:
            if r.status == 404:
                return None
            await self._transport.expect(r, 200)
            return r.content_length

    async def blob_chunks(
        self, repository: str, digest: Digest, size: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a blob, resuming with ``Range`` after a broken connection.

        The last step checks size and digest: a consumer must not commit what it received until
        the iteration has ended without an exception.
        """
        verifier = StreamVerifier(digest, size)
        url = f"/v2/{repository}/blobs/{digest}"
        scopes = repository_scopes(repository, "pull")
        failures = 0
        while True:
            offset = verifier.received
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                async with self._transport.send(
                    "GET", url, scopes=scopes, headers=headers, long_answer=True
                ) as r:
                    await self._transport.expect(r, 200, 206)
                    skip = offset if r.status == 200 else 0
                    async for chunk in self._transport.chunks(r):
                        if skip:
                            drop = min(skip, len(chunk))
                            chunk, skip = chunk[drop:], skip - drop
                            if not chunk:
                                continue
                        await verifier.feed(chunk)
                        yield chunk
                await verifier.verify()
                return
            except self._transport.broken as exc:
                failures += 1
                if failures >= self.options.retry.attempts:
                    raise RegistryUnavailable(
                        f"{self.host}: blob {digest} download broke {failures} times:"
                        f" {describe(exc)}",
                        url=url,
                    ) from exc
                await asyncio.sleep(self.options.retry.backoff(failures))

    async def get_blob(self, repository: str, digest: Digest, size: int | None = None) -> bytes:
        """A whole (small) blob, verified."""
        return b"".join([c async for c in self.blob_chunks(repository, digest, size)])

    async def mount_blob(self, repository: str, digest: Digest, source_repository: str) -> bool:
        """Cross-repository mount; True when the registry mounted the blob."""
        query = urlencode({"mount": str(digest), "from": source_repository})
        url = f"/v2/{repository}/blobs/uploads/?{query}"
        scopes = [
            *repository_scopes(repository, "pull,push"),
            *repository_scopes(source_repository, "pull"),
        ]
        async with self._transport.send("POST", url, scopes=scopes) as r:
            if r.status == 201:
                return True
            await self._transport.expect(r, 202)
            location = r.headers.get("Location")
        if location:  # not mounted: the registry opened an upload session we do not need
            from catalog.oci import _uploads  # see push_blob

            located = self._transport.located(self._transport.base_url + url, location)
            await _uploads.cancel_upload(self._transport, repository, located)
        return False

    async def push_blob(
        self,
        repository: str,
        digest: Digest,
        content: bytes | AsyncIterable[bytes],
        size: int | None = None,
        *,
        verified: bool = False,
    ) -> None:
        """Upload a blob: in one PUT when small, otherwise in chunks.

        A stream that fails (for example with a digest mismatch from its source) cancels the upload
        session: the registry never commits a blob that was not wholly received and verified.
        ``verified`` bytes were checked by the caller (a stream it read to the end): hashing
        them again would only cost time.
        """
        # Imported by the first upload: a command that writes nothing (a no-change
        # re-sync, a read) starts without it.
        from catalog.oci import _uploads

        await _uploads.push_blob(
            self._transport, repository, digest, content, size, verified=verified
        )


def _encodable(names: list[str] | tuple[()]) -> bool:
    """Whether every name is Unicode text (no lone surrogate), checked in one pass."""
    try:
        "".join(names).encode()
    except UnicodeEncodeError:
        return False
    return True


def _transport_for(
    host: str, options: RegistryOptions, credential_store: CredentialStore | None
) -> HTTPTransport:
    """The transport ``options.transport`` names, its module imported only then: aiohttp's
    import alone is most of a one-shot command's start-up."""
    if options.transport == "stdlib":
        from catalog.oci._stdlib import StdlibTransport

        return StdlibTransport(host, options, credential_store)
    from catalog.oci._transport import Transport

    return Transport(host, options, credential_store)


def _digest_in(manifest: Manifest, algorithm: str) -> Digest:
    """The manifest's digest computed with ``algorithm`` (a registry may announce sha256 for a
    manifest pushed by its sha512 digest)."""
    if manifest.digest.algorithm == algorithm:
        return manifest.digest
    return Digest.of(manifest.raw, algorithm)


def _verified_manifest(raw: bytes, content_type: str | None, wanted: Digest | None) -> Manifest:
    """The manifest in ``raw``, which must have the digest ``wanted`` (when known)."""
    digest = Digest.of(raw, wanted.algorithm) if wanted else Digest.of(raw)
    if wanted and digest != wanted:
        raise DigestMismatch(str(wanted), str(digest), "manifest")
    return parse_manifest(raw, content_type, digest)
