"""An async client for the OCI distribution API (and Docker Registry v2's ``_catalog``).

One :class:`RegistryClient` per registry host: it owns the connection pool, the concurrency limit,
authentication state and the retry policy. Every byte it hands out has been checked against its
digest (blobs: by the end of the stream; consumers commit nothing until the stream ends cleanly).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import ssl
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlencode, urljoin

import aiohttp
import aiohttp.payload
from aiohttp.abc import AbstractStreamWriter

from catalog.oci import mediatypes as mt
from catalog.oci.auth import (
    DEFAULT_TOKEN_LIFETIME,
    Authenticator,
    Challenge,
    basic_header,
    parse_challenge,
)
from catalog.oci.credentials import Credentials, CredentialStore
from catalog.oci.digest import Digest, StreamVerifier, verify_bytes
from catalog.oci.errors import (
    AuthError,
    DigestMismatch,
    InvalidManifest,
    ManifestTooLarge,
    NotInRegistry,
    OCIError,
    RegistryError,
    RegistryUnavailable,
    error_for,
)
from catalog.oci.manifest import (
    DEFAULT_MANIFEST_LIMIT,
    Descriptor,
    Manifest,
    build_index,
    parse_manifest,
)
from catalog.oci.retry import RETRY_STATUSES, RetryPolicy, parse_retry_after

_READ_CHUNK = 4 * 1024 * 1024
_WRITE_SLICE = 1024 * 1024
_ERROR_BODY_LIMIT = 64 * 1024
_CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to talk to one registry."""

    insecure: bool = False  # allow plain HTTP for a host that is not loopback
    ca_file: Path | None = None  # trust this CA bundle (implies HTTPS, loopback included)
    credentials: Credentials | None = None  # explicit; otherwise looked up per host
    max_concurrency: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    manifest_limit: int = DEFAULT_MANIFEST_LIMIT
    chunk_size: int = 16 * 1024 * 1024  # blobs larger than this are uploaded in chunks


@dataclass(frozen=True, slots=True)
class Referrers:
    """What a subject's referrers lookup found and how."""

    descriptors: list[Descriptor]
    scheme: str  # "referrers-api" or "fallback-tag"
    filtered: bool  # the artifactType filter was applied (by the registry or by us)


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.startswith("["):
        name = host[1 : host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _next_link(header: str | None, base: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, absolute."""
    if not header:
        return None
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            target = part[part.find("<") + 1 : part.find(">")]
            return urljoin(base, target)
    return None


def _scopes(repository: str | None, actions: str) -> list[str]:
    return [f"repository:{repository}:{actions}"] if repository else []


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
        creds = self.options.credentials
        if creds is None:
            creds = (credential_store or CredentialStore()).lookup(host)
        self._auth = Authenticator(creds, self._fetch_token)
        secure = self.options.ca_file is not None or not (
            is_loopback(host) or self.options.insecure
        )
        self.base_url = f"{'https' if secure else 'http'}://{host}"
        self._semaphore = asyncio.Semaphore(self.options.max_concurrency)
        self._session: aiohttp.ClientSession | None = None
        # Weak: a long-running service must not keep a lock per subject it ever touched.
        self._subject_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.has_referrers_api: bool | None = None
        self._probing = asyncio.Lock()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.options.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.options.ca_file))
        return True

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.options.max_concurrency * 2, ssl=self._ssl(), ttl_dns_cache=300
            )
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.options.connect_timeout,
                sock_read=self.options.read_timeout,
            )
            # Raw bytes only: a transparently decompressed body would not match its digest.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=False,
                read_bufsize=_READ_CHUNK,
            )
        return self._session

    # -- transport -------------------------------------------------------------------------

    async def _fetch_token(
        self, challenge: Challenge, scopes: list[str], creds: Credentials | None
    ) -> tuple[str, float]:
        if not challenge.realm:
            raise AuthError(f"{self.host}: bearer challenge without a realm")
        query: list[tuple[str, str]] = []
        if "service" in challenge.params:
            query.append(("service", challenge.params["service"]))
        query.extend(("scope", s) for s in scopes)
        url = challenge.realm + ("&" if "?" in challenge.realm else "?") + urlencode(query)
        headers = {}
        if creds is not None:
            headers["Authorization"] = basic_header(creds)
        async with self._send("GET", url, headers=headers, authenticate=False) as resp:
            if resp.status in (401, 403):
                raise AuthError(
                    f"{self.host}: the token server at {challenge.realm} refused the credentials"
                    f" (HTTP {resp.status})"
                )
            if resp.status != 200:
                await self._raise_for(resp)
            try:
                answer = json.loads(await resp.read())
            except json.JSONDecodeError:
                raise AuthError(f"{self.host}: the token server answered non-JSON") from None
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.host}: the token server answered without a token")
        lifetime = answer.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        return token, float(lifetime)

    @contextlib.asynccontextmanager
    async def _send(
        self,
        method: str,
        url: str,
        *,
        scopes: list[str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        stream: AsyncIterable[bytes] | None = None,
        authenticate: bool = True,
        retry: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send one request with auth, retries and the concurrency limit; yield the final answer.

        Answers with a retryable status are retried; any other status is the caller's to judge.
        A streamed body cannot be replayed, so such requests are sent once.
        """
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        policy = self.options.retry
        retry = retry and stream is None
        attempt = 0
        reauthenticated = False
        async with self._semaphore:
            while True:
                attempt += 1
                request_headers = dict(headers or {})
                if authenticate:
                    auth = await self._auth.header(scopes or [])
                    if auth:
                        request_headers["Authorization"] = auth
                data: AsyncIterable[bytes] | bytes | _SlicedBytes | None = stream or body
                if body is not None and len(body) > _WRITE_SLICE:
                    data = _SlicedBytes(body)  # a fresh one per attempt: a payload is read once
                try:
                    resp = await self.session.request(
                        method, url, headers=request_headers, data=data
                    )
                except aiohttp.ClientConnectorCertificateError as exc:
                    raise RegistryUnavailable(
                        f"{self.host}: TLS certificate verification failed"
                        f" ({exc.certificate_error}); trust the registry's CA with --ca-file",
                        url=url,
                    ) from exc
                except _CONNECTION_ERRORS as exc:
                    if not retry or attempt >= policy.attempts:
                        raise RegistryUnavailable(
                            f"{self.host} unreachable after {attempt} attempt(s): "
                            f"{exc.__class__.__name__}: {exc}",
                            url=url,
                        ) from exc
                    await asyncio.sleep(policy.backoff(attempt))
                    continue
                if resp.status == 401 and authenticate and not reauthenticated and stream is None:
                    challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
                    if challenge is not None:
                        resp.release()
                        self._auth.learn(challenge)
                        self._auth.invalidate(" ".join(scopes or []))
                        reauthenticated = True
                        attempt -= 1
                        continue
                if resp.status in RETRY_STATUSES and retry and attempt < policy.attempts:
                    wait = parse_retry_after(resp.headers.get("Retry-After"))
                    if wait is None or wait <= policy.max_retry_after:
                        resp.release()
                        await asyncio.sleep(policy.backoff(attempt, wait))
                        continue
                try:
                    yield resp
                finally:
                    resp.release()
                return

    async def _raise_for(self, resp: aiohttp.ClientResponse) -> None:
        """Raise the typed error a failed answer stands for."""
        body = b""
        with contextlib.suppress(*_CONNECTION_ERRORS):
            body = await resp.content.read(_ERROR_BODY_LIMIT)
        code: str | None = None
        message = body.decode(errors="replace").strip() or resp.reason or "no message"
        try:
            errors = json.loads(body).get("errors") or []
            if errors and isinstance(errors[0], dict):
                code = errors[0].get("code")
                message = errors[0].get("message") or message
        except (json.JSONDecodeError, AttributeError):
            pass
        raise error_for(resp.status, code, message, str(resp.url))

    async def _expect(self, resp: aiohttp.ClientResponse, *statuses: int) -> None:
        if resp.status not in statuses:
            await self._raise_for(resp)

    # -- discovery -------------------------------------------------------------------------

    async def ping(self) -> None:
        """Check that the host speaks the distribution API and that we may use it."""
        async with self._send("GET", "/v2/") as resp:
            await self._expect(resp, 200)

    async def _pages(
        self, path: str, key: str, scopes: list[str], page_size: int
    ) -> AsyncIterator[str]:
        url: str | None = f"{path}?n={page_size}"
        while url:
            async with self._send("GET", url, scopes=scopes) as resp:
                await self._expect(resp, 200)
                doc = await resp.json(content_type=None)
                url = _next_link(resp.headers.get("Link"), str(resp.url))
            for item in doc.get(key) or []:
                yield item

    def catalog(self, page_size: int = 100) -> AsyncIterator[str]:
        """Every repository name, following ``Link`` pagination."""
        return self._pages("/v2/_catalog", "repositories", ["registry:catalog:*"], page_size)

    def tags(self, repository: str, page_size: int = 1000) -> AsyncIterator[str]:
        """Every tag of a repository, following ``Link`` pagination when the registry pages."""
        return self._pages(
            f"/v2/{repository}/tags/list", "tags", _scopes(repository, "pull"), page_size
        )

    # -- manifests -------------------------------------------------------------------------

    async def head_manifest(self, repository: str, ref: str) -> Descriptor | None:
        """The descriptor a tag or digest resolves to; None when there is no such manifest."""
        url = f"/v2/{repository}/manifests/{ref}"
        headers = {"Accept": mt.MANIFEST_ACCEPT}
        async with self._send(
            "HEAD", url, scopes=_scopes(repository, "pull"), headers=headers
        ) as r:
            if r.status == 404:
                return None
            await self._expect(r, 200)
            digest = r.headers.get("Docker-Content-Digest")
            media_type = (r.headers.get("Content-Type") or "").split(";")[0]
            length = r.headers.get("Content-Length")
        if not digest or not length or media_type not in mt.MANIFESTS:
            # Some registries omit headers on HEAD: the GET tells the whole truth.
            try:
                return (await self.get_manifest(repository, ref)).descriptor()
            except NotInRegistry:
                return None
        return Descriptor(media_type, Digest.parse(digest), int(length))

    async def get_manifest(self, repository: str, ref: str) -> Manifest:
        """Fetch, size-limit, verify and parse a manifest by tag or digest."""
        limit = self.options.manifest_limit
        url = f"/v2/{repository}/manifests/{ref}"
        headers = {"Accept": mt.MANIFEST_ACCEPT}
        async with self._send("GET", url, scopes=_scopes(repository, "pull"), headers=headers) as r:
            await self._expect(r, 200)
            if r.content_length is not None and r.content_length > limit:
                raise ManifestTooLarge(limit)
            raw = await r.content.read(limit + 1)
            while not r.content.at_eof() and len(raw) <= limit:
                raw += await r.content.read(limit + 1 - len(raw))
            if len(raw) > limit:
                raise ManifestTooLarge(limit)
            announced = r.headers.get("Docker-Content-Digest")
            content_type = r.headers.get("Content-Type")
        expected = ref if ref.startswith(("sha256:", "sha512:")) else announced
        digest = Digest.of(raw)
        if expected:
            wanted = Digest.parse(expected)
            actual = digest if wanted.algorithm == "sha256" else Digest.of(raw, wanted.algorithm)
            if actual != wanted:
                raise DigestMismatch(str(wanted), str(actual), "manifest")
            digest = wanted
        return parse_manifest(raw, content_type, digest)

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
        scopes = _scopes(repository, "pull,push")
        async with self._send("PUT", url, scopes=scopes, headers=headers, body=manifest.raw) as r:
            await self._expect(r, 201, 200)
            stored = r.headers.get("Docker-Content-Digest")
            oci_subject = r.headers.get("OCI-Subject")
        if stored and stored != str(manifest.digest):
            raise DigestMismatch(str(manifest.digest), stored, "pushed manifest")
        if manifest.subject is not None and not oci_subject and fallback_index:
            await self._add_to_fallback_index(repository, manifest.subject.digest, manifest)

    async def delete_manifest(self, repository: str, digest: Digest) -> None:
        url = f"/v2/{repository}/manifests/{digest}"
        async with self._send("DELETE", url, scopes=_scopes(repository, "delete")) as r:
            await self._expect(r, 202, 200)

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
        if self.has_referrers_api is None:
            # The first answer tells whether the registry has the API: concurrent callers wait
            # for it rather than each probing.
            async with self._probing:
                if self.has_referrers_api is None:
                    found = await self._referrers_api(repository, digest, artifact_type)
                    if found is not None:
                        return found
        if self.has_referrers_api:
            found = await self._referrers_api(repository, digest, artifact_type)
            if found is not None:
                return found
        if not fallback:
            return Referrers([], "none", False)
        index = await self._fallback_index(repository, digest)
        descriptors = list(index.manifests) if index else []
        if artifact_type:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return Referrers(descriptors, "fallback-tag", artifact_type is not None)

    async def _referrers_api(
        self, repository: str, digest: Digest, artifact_type: str | None
    ) -> Referrers | None:
        query = f"?{urlencode({'artifactType': artifact_type})}" if artifact_type else ""
        url: str | None = f"/v2/{repository}/referrers/{digest}{query}"
        descriptors: list[Descriptor] = []
        applied = True
        while url:
            async with self._send("GET", url, scopes=_scopes(repository, "pull")) as r:
                if r.status == 404 and not descriptors:
                    # A registry with the API answers an empty index, never 404 (spec 1.1).
                    self.has_referrers_api = False
                    return None
                await self._expect(r, 200)
                self.has_referrers_api = True
                index = parse_manifest(await r.read(), mt.OCI_INDEX)
                applied = applied and "artifactType" in r.headers.get("OCI-Filters-Applied", "")
                url = _next_link(r.headers.get("Link"), str(r.url))
            descriptors.extend(index.manifests)
        if artifact_type and not applied:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return Referrers(descriptors, "referrers-api", artifact_type is not None)

    async def _fallback_index(self, repository: str, digest: Digest) -> Manifest | None:
        return await fallback_index(partial(self.get_manifest, repository), digest)

    async def _add_to_fallback_index(
        self, repository: str, subject: Digest, referrer: Manifest
    ) -> None:
        key = (repository, str(subject))
        lock = self._subject_locks.get(key)
        if lock is None:
            lock = self._subject_locks[key] = asyncio.Lock()
        async with lock:
            index = await self._fallback_index(repository, subject)
            existing = list(index.manifests) if index else []
            if any(d.digest == referrer.digest for d in existing):
                return
            entry = Descriptor(
                referrer.media_type,
                referrer.digest,
                referrer.size,
                artifact_type=referrer.effective_artifact_type,
                annotations=referrer.annotations,
            )
            raw = build_index([*existing, entry])
            await self.put_manifest(
                repository, parse_manifest(raw, mt.OCI_INDEX), subject.fallback_tag()
            )

    # -- blobs -----------------------------------------------------------------------------

    async def head_blob(self, repository: str, digest: Digest) -> int | None:
        """The blob's size, or None when the repository does not have it."""
        url = f"/v2/{repository}/blobs/{digest}"
        async with self._send("HEAD", url, scopes=_scopes(repository, "pull")) as r:
            if r.status == 404:
                return None
            await self._expect(r, 200)
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
        failures = 0
        while True:
            offset = verifier.received
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                async with self._send(
                    "GET", url, scopes=_scopes(repository, "pull"), headers=headers
                ) as r:
                    await self._expect(r, 200, 206)
                    skip = offset if r.status == 200 else 0
                    async for chunk in r.content.iter_chunked(_READ_CHUNK):
                        if skip:
                            drop = min(skip, len(chunk))
                            chunk, skip = chunk[drop:], skip - drop
                            if not chunk:
                                continue
                        await verifier.feed(chunk)
                        yield chunk
                await verifier.verify()
                return
            except _CONNECTION_ERRORS as exc:
                failures += 1
                if failures >= self.options.retry.attempts:
                    raise RegistryUnavailable(
                        f"{self.host}: blob {digest} download broke {failures} times: {exc}",
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
        scopes = [*_scopes(repository, "pull,push"), *_scopes(source_repository, "pull")]
        async with self._send("POST", url, scopes=scopes) as r:
            if r.status == 201:
                return True
            await self._expect(r, 202)
            location = r.headers.get("Location")
        if location:  # not mounted: the registry opened an upload session we do not need
            await self._cancel_upload(repository, location)
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
        if isinstance(content, bytes) and not verified:
            verify_bytes(content, digest, size)
        location = await self._start_upload(repository)
        try:
            if isinstance(content, bytes) and len(content) <= self.options.chunk_size:
                await self._finish_upload(repository, location, digest, content)
                return
            location = await self._upload_chunks(repository, location, content)
            await self._finish_upload(repository, location, digest, b"")
        except BaseException:
            with contextlib.suppress(OCIError, *_CONNECTION_ERRORS):
                await self._cancel_upload(repository, location)
            raise

    async def _start_upload(self, repository: str) -> str:
        url = f"/v2/{repository}/blobs/uploads/"
        async with self._send("POST", url, scopes=_scopes(repository, "pull,push")) as r:
            await self._expect(r, 202)
            location = r.headers.get("Location")
        if not location:
            raise RegistryError("upload started without a Location", url=url)
        return urljoin(self.base_url + "/", location)

    async def _finish_upload(
        self, repository: str, location: str, digest: Digest, body: bytes
    ) -> None:
        url = location + ("&" if "?" in location else "?") + urlencode({"digest": str(digest)})
        headers = {"Content-Type": "application/octet-stream"}
        scopes = _scopes(repository, "pull,push")
        async with self._send("PUT", url, scopes=scopes, headers=headers, body=body) as r:
            await self._expect(r, 201)

    async def _upload_chunks(
        self, repository: str, location: str, content: bytes | AsyncIterable[bytes]
    ) -> str:
        """PATCH fixed-size chunks; after a failed PATCH ask the registry where it stands."""
        offset = 0
        async for chunk in _rechunk(content, self.options.chunk_size):
            failures = 0
            start = offset
            while start < offset + len(chunk):
                piece = chunk[start - offset :]
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + len(piece) - 1}",
                }
                try:
                    async with self._send(
                        "PATCH",
                        location,
                        scopes=_scopes(repository, "pull,push"),
                        headers=headers,
                        body=piece,
                        retry=False,
                    ) as r:
                        await self._expect(r, 202)
                        location = urljoin(location, r.headers.get("Location", location))
                    start = offset + len(chunk)
                except (RegistryUnavailable, RegistryError) as exc:
                    failures += 1
                    if failures >= self.options.retry.attempts or (
                        isinstance(exc, RegistryError)
                        and exc.status
                        and exc.status < 500
                        and exc.status != 429
                    ):
                        raise
                    await asyncio.sleep(self.options.retry.backoff(failures))
                    start, location = await self._upload_status(repository, location)
                    if start < offset:
                        raise RegistryError(
                            f"upload lost data (registry at byte {start}, chunk at {offset})",
                            url=location,
                        ) from exc
            offset += len(chunk)
        return location

    async def _upload_status(self, repository: str, location: str) -> tuple[int, str]:
        async with self._send("GET", location, scopes=_scopes(repository, "pull,push")) as r:
            await self._expect(r, 204, 202)
            # Distribution answers "0-0" for an empty session as well as for one byte: read it
            # as empty (no chunk is one byte long), or the resumed upload would skip a byte.
            end = int((r.headers.get("Range") or "0--1").split("-")[-1])
            received = end + 1 if end > 0 else 0
            return received, urljoin(location, r.headers.get("Location", location))

    async def _cancel_upload(self, repository: str, location: str) -> None:
        async with self._send("DELETE", location, scopes=_scopes(repository, "pull,push")):
            pass


class _SlicedBytes(aiohttp.payload.Payload):
    """A large body written in slices, its length announced.

    Handed one large write, asyncio's transport buffers the rest and shrinks that buffer from
    the front after every send, a memmove each time: 16 MiB chunks uploaded at about half the
    speed a registry takes them.
    """

    _value: bytes

    def __init__(self, value: bytes) -> None:
        super().__init__(value, content_type="application/octet-stream")
        self._size = len(value)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._value.decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        view = memoryview(self._value)[:content_length]
        for start in range(0, len(view), _WRITE_SLICE):
            await writer.write(view[start : start + _WRITE_SLICE])


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


async def fallback_index(
    get_manifest: Callable[[str], Awaitable[Manifest]], subject: Digest
) -> Manifest | None:
    """The ``<alg>-<hex>`` referrers index of ``subject``, read with ``get_manifest``; a missing
    tag, or one that is not an index, means no referrers (spec)."""
    try:
        index = await get_manifest(subject.fallback_tag())
    except (NotInRegistry, InvalidManifest):
        return None
    return index if index.media_type == mt.OCI_INDEX else None
