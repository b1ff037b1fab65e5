"""HTTP to one registry host: TLS, the connection pool, authentication, retries, the limit.

Every request of a :class:`~catalog.oci.client.RegistryClient` goes through :meth:`Transport.send`;
what an answer means is for the endpoint that asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from urllib.parse import urlencode, urljoin

import aiohttp
import aiohttp.payload
from aiohttp.abc import AbstractStreamWriter

from catalog.oci.auth import (
    DEFAULT_TOKEN_LIFETIME,
    Authenticator,
    Challenge,
    basic_header,
    parse_challenge,
    realm_allowed,
)
from catalog.oci.credentials import Credentials, CredentialStore
from catalog.oci.errors import AuthError, RegistryUnavailable, error_for
from catalog.oci.options import RegistryOptions
from catalog.oci.retry import RETRY_STATUSES, parse_retry_after

READ_CHUNK = 4 * 1024 * 1024
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
_WRITE_SLICE = 1024 * 1024
_ERROR_BODY_LIMIT = 64 * 1024
_TOKEN_ANSWER_LIMIT = 1024 * 1024  # tokens are kilobytes; a realm may be anyone's server


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


def next_link(header: str | None, base: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, absolute."""
    if not header:
        return None
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            target = part[part.find("<") + 1 : part.find(">")]
            return urljoin(base, target)
    return None


def repository_scopes(repository: str | None, actions: str) -> list[str]:
    return [f"repository:{repository}:{actions}"] if repository else []


class Transport:
    """The HTTP side of one registry host: it owns the session, the token cache and the limit."""

    def __init__(
        self,
        host: str,
        options: RegistryOptions,
        credential_store: CredentialStore | None = None,
    ) -> None:
        self.host = host
        self.options = options
        creds = options.credentials
        if creds is None:
            creds = (credential_store or CredentialStore()).lookup(host)
        self._auth = Authenticator(creds, self._fetch_token)
        secure = options.ca_file is not None or not (is_loopback(host) or options.insecure)
        self.base_url = f"{'https' if secure else 'http'}://{host}"
        self._semaphore = asyncio.Semaphore(options.max_concurrency)
        self._session: aiohttp.ClientSession | None = None

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
                read_bufsize=READ_CHUNK,
            )
        return self._session

    async def _fetch_token(
        self, challenge: Challenge, scopes: list[str], creds: Credentials | None
    ) -> tuple[str, float]:
        if not challenge.realm:
            raise AuthError(f"{self.host}: bearer challenge without a realm")
        if creds is not None and not realm_allowed(
            challenge.realm, self.base_url, self.options.token_realms
        ):
            # Checked here, where the request is made: nothing reaches a realm it names.
            raise AuthError(
                f"{self.host}: its token server {challenge.realm[:200]!r} is not on the "
                "registry's host, so its credentials are not sent there (list the token "
                "server in the credentials' token_realms if it is the registry's own)"
            )
        query: list[tuple[str, str]] = []
        if "service" in challenge.params:
            query.append(("service", challenge.params["service"]))
        query.extend(("scope", s) for s in scopes)
        url = challenge.realm + ("&" if "?" in challenge.realm else "?") + urlencode(query)
        headers = {}
        if creds is not None:
            headers["Authorization"] = basic_header(creds)
        async with self.send("GET", url, headers=headers, authenticate=False) as resp:
            if resp.status in (401, 403):
                raise AuthError(
                    f"{self.host}: the token server at {challenge.realm} refused the credentials"
                    f" (HTTP {resp.status})"
                )
            if resp.status != 200:
                # Typed like any answer, but without its body: a realm may be any URL the
                # registry chose, and its answer must not come back through error messages.
                raise error_for(
                    resp.status, None, f"the token server answered HTTP {resp.status}", url[:200]
                )
            body = await resp.content.read(_TOKEN_ANSWER_LIMIT + 1)
            if len(body) > _TOKEN_ANSWER_LIMIT:
                raise AuthError(f"{self.host}: the token server's answer is over 1 MiB")
            try:
                answer = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise AuthError(f"{self.host}: the token server answered non-JSON") from None
            if not isinstance(answer, dict):
                raise AuthError(f"{self.host}: the token server answered non-JSON")
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.host}: the token server answered without a token")
        lifetime = answer.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        return token, float(lifetime)

    @contextlib.asynccontextmanager
    async def send(
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
                except CONNECTION_ERRORS as exc:
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

    async def raise_for(self, resp: aiohttp.ClientResponse) -> None:
        """Raise the typed error a failed answer stands for."""
        body = b""
        with contextlib.suppress(*CONNECTION_ERRORS):
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

    async def expect(self, resp: aiohttp.ClientResponse, *statuses: int) -> None:
        if resp.status not in statuses:
            await self.raise_for(resp)


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
