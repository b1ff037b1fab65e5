"""HTTP to one registry host: TLS, the connection pool, authentication, retries, the limit.

Every request of a :class:`~catalog.oci.client.RegistryClient` goes through :meth:`Transport.send`;
what an answer means is for the endpoint that asked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urljoin

import aiohttp
import aiohttp.payload
import yarl
from aiohttp.abc import AbstractStreamWriter

from catalog.oci import boundedjson
from catalog.oci.auth import (
    DEFAULT_TOKEN_LIFETIME,
    Authenticator,
    Challenge,
    TokenAnswer,
    basic_header,
    oauth_refresh_form,
    parse_challenge,
    realm_allowed,
    token_query_url,
)
from catalog.oci.credentials import Credentials, CredentialStore
from catalog.oci.digest import Digest
from catalog.oci.errors import (
    AuthError,
    BadResponse,
    InvalidDigest,
    NotInRegistry,
    OCIError,
    RegistryUnavailable,
    error_for,
)
from catalog.oci.options import RegistryOptions, is_loopback
from catalog.oci.retry import RETRY_STATUSES, parse_retry_after

READ_CHUNK = 4 * 1024 * 1024
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
_WRITE_SLICE = 1024 * 1024
_ERROR_BODY_LIMIT = 64 * 1024
# A token answer may carry the token twice (``token`` and ``access_token``), and a little more.
_TOKEN_BODY_EXTRA = 4096
# What a registry's error body may add to a message: one line, this long at most.
_MESSAGE_LIMIT = 300
# Bounds of every JSON answer (lists, referrers, tokens, errors): json.loads alone spends ~20
# bytes of objects per input byte on ``[],[],…`` (181 MiB and 1.6 s for 8 MiB) and recurses
# once per level. A real page of 1,000 tags is ~1,000 values.
JSON_DEPTH = 64
JSON_VALUES = 1_000_000
# Work on more bytes than this (decoding, hashing) runs on a worker thread: a few ms of C on
# the event loop would hold up every call the process answers; below it, the hop costs more.
OFF_LOOP = 256 * 1024
_R = TypeVar("_R")


def decode_json(raw: bytes) -> Any:
    """A registry's JSON answer, under :data:`JSON_DEPTH` and :data:`JSON_VALUES`; a
    :class:`~catalog.oci.boundedjson.JSONRefused` line otherwise."""
    return boundedjson.loads(raw, max_depth=JSON_DEPTH, max_values=JSON_VALUES)


async def off_loop(size: int, work: Callable[..., _R], *args: Any) -> _R:
    """``work(*args)``, on a worker thread when it handles more than :data:`OFF_LOOP` bytes."""
    if size > OFF_LOOP:
        return await asyncio.to_thread(work, *args)
    return work(*args)


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


class Trickle(TimeoutError):
    """A body arriving slower than the throughput floor: dropped like a timed-out read."""


def describe(exc: BaseException) -> str:
    """A transport failure in a few words (a bare timeout has no message of its own)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    if isinstance(exc, aiohttp.ClientResponseError):  # its str repeats the URL
        return f"{exc.__class__.__name__}: {exc.message}"
    return f"{exc.__class__.__name__}: {exc}"


def one_line(text: str, secrets: list[str] | None = None) -> str:
    """``text`` on one line, cut short, with every secret in ``secrets`` blanked out."""
    for secret in secrets or []:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def sent_secrets(headers: Mapping[str, str]) -> list[str]:
    """What an ``Authorization`` header gave away: the token, or the user's password."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if not value:
        return []
    if scheme.lower() != "basic":
        return [value]
    with contextlib.suppress(ValueError):
        return [value, base64.b64decode(value).decode(errors="replace").partition(":")[2]]
    return [value]


def _whole_request_timed_out(exc: BaseException) -> bool:
    """A deadline on the whole request, not aiohttp's on a connect or a read."""
    return isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ServerTimeoutError)


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
        # The timeouts of body-less requests, made once: thousands of such requests a second
        # are what an index run sends.
        self._bounded = self._client_timeout(options.request_timeout)
        self._unbounded = self._client_timeout(None)

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
            # Raw bytes only: a transparently decompressed body would not match its digest.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._unbounded,
                auto_decompress=False,
                read_bufsize=READ_CHUNK,
            )
        return self._session

    async def _fetch_token(
        self, challenge: Challenge, scopes: list[str], creds: Credentials | None
    ) -> TokenAnswer:
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
        if creds is not None and creds.identity_token:
            form = oauth_refresh_form(challenge, scopes, creds.identity_token)
            try:
                return await self._exchange_token(challenge, "POST", challenge.realm, form, {})
            except NotInRegistry:
                pass  # no OAuth2 at this token server: its GET, without the refresh token
        headers = {}
        if creds is not None and (creds.username or creds.password):
            headers["Authorization"] = basic_header(creds)
        url = token_query_url(challenge, scopes)
        return await self._exchange_token(challenge, "GET", url, None, headers)

    async def _exchange_token(
        self,
        challenge: Challenge,
        method: str,
        url: str,
        form: bytes | None,
        headers: dict[str, str],
    ) -> TokenAnswer:
        server = one_line(challenge.realm)
        if form is not None:
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        # A redirect would carry the form (and its refresh token) to wherever it points.
        async with self.send(
            method, url, headers=headers, body=form, authenticate=False, redirects=form is None
        ) as resp:
            # OAuth2 (RFC 6749 5.2) refuses a grant with 400 invalid_grant.
            if resp.status in (401, 403) or (form is not None and resp.status == 400):
                raise AuthError(
                    f"{self.host}: the token server at {server} refused the credentials"
                    f" (HTTP {resp.status})"
                )
            if resp.status != 200:
                # Typed like any answer, but without its body: a realm may be any URL the
                # registry chose, and its answer must not come back through error messages.
                raise error_for(
                    resp.status, None, f"the token server answered HTTP {resp.status}", url[:200]
                )
            raw = await self.read(
                resp,
                f"token server's answer ({server})",
                2 * self.options.token_limit + _TOKEN_BODY_EXTRA,
                lambda limit: AuthError(
                    f"{self.host}: the token server at {server} answered more than {limit}"
                    " bytes; refused"
                ),
            )
        # Neither the answer nor the token is ever quoted: it is a secret however malformed.
        try:
            answer = decode_json(raw)
        except boundedjson.JSONRefused:
            raise AuthError(
                f"{self.host}: the token server at {server} answered non-JSON"
            ) from None
        if not isinstance(answer, dict):
            raise AuthError(f"{self.host}: the token server at {server} answered without a token")
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.host}: the token server at {server} answered without a token")
        if len(token) > self.options.token_limit:
            raise AuthError(
                f"{self.host}: the token server at {server} answered a token of {len(token)}"
                f" characters, over the {self.options.token_limit} limit; refused"
            )
        if not (token.isascii() and token.isprintable()) or " " in token:
            raise AuthError(
                f"{self.host}: the token server at {server} answered a token that cannot be"
                " sent in a header; refused"
            )
        lifetime = answer.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        refresh = answer.get("refresh_token") if form is not None else None
        if not isinstance(refresh, str) or not refresh or len(refresh) > self.options.token_limit:
            refresh = None  # keep the one held
        return TokenAnswer(token, float(lifetime), refresh)

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
        long_answer: bool = False,
        redirects: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send one request with auth, retries and the concurrency limit; yield the final answer.

        Answers with a retryable status are retried; any other status is the caller's to judge.
        A streamed body cannot be replayed, so such requests are sent once. Every transport
        failure ends as a :class:`~catalog.oci.errors.RegistryUnavailable`.

        The whole exchange, body included, has ``request_timeout`` (plus time for the bytes of
        an upload); a ``long_answer`` (a blob) only until its headers, its body being held to
        the throughput floor by :meth:`chunks` instead.
        """
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        policy = self.options.retry
        retry = retry and stream is None
        timeout = self._timeout(body, unbounded=long_answer or stream is not None)
        # Until the headers: what the whole exchange may take, or, for a blob, the plain limit.
        until_headers = timeout.total or (None if stream else self.options.request_timeout)
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
                # aiohttp's own total deadline bounds a bounded exchange, headers included; only
                # a long answer's wait for its headers needs a deadline of ours.
                deadline = (
                    contextlib.nullcontext() if timeout.total else asyncio.timeout(until_headers)
                )
                try:
                    async with deadline:
                        resp = await self.session.request(
                            method,
                            url,
                            headers=request_headers,
                            data=data,
                            timeout=timeout,
                            allow_redirects=redirects,
                        )
                except aiohttp.ClientConnectorCertificateError as exc:
                    raise RegistryUnavailable(
                        f"{self.host}: TLS certificate verification failed"
                        f" ({exc.certificate_error}); trust the registry's CA with --ca-file",
                        url=url,
                    ) from exc
                except CONNECTION_ERRORS as exc:
                    if _whole_request_timed_out(exc):
                        # The registry answers, too slowly: another attempt would only wait
                        # as long again. (A silent socket is a read timeout, and retried.)
                        raise RegistryUnavailable(
                            f"{self.host}: no answer within {until_headers:g} s", url=url
                        ) from exc
                    if not retry or attempt >= policy.attempts:
                        raise RegistryUnavailable(
                            f"{self.host} unreachable after {attempt} attempt(s): "
                            + one_line(describe(exc)),
                            url=url,
                        ) from exc
                    await asyncio.sleep(policy.backoff(attempt))
                    continue
                except aiohttp.TooManyRedirects as exc:
                    raise BadResponse(
                        f"{self.host}: redirected {len(exc.history)} times without an answer"
                        " (a redirect loop?)",
                        url=url,
                    ) from exc
                except aiohttp.ClientError as exc:  # a malformed answer, an invalid redirect…
                    raise BadResponse(
                        f"{self.host}: unusable answer: {one_line(describe(exc))}", url=url
                    ) from exc
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

    def _timeout(self, body: bytes | None, *, unbounded: bool) -> aiohttp.ClientTimeout:
        if unbounded:
            return self._unbounded
        if not body:
            return self._bounded
        total = self.options.request_timeout + len(body) / self.options.min_throughput
        return self._client_timeout(total)

    def _client_timeout(self, total: float | None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=total,
            sock_connect=self.options.connect_timeout,
            sock_read=self.options.read_timeout,
        )

    def announced_digest(self, resp: aiohttp.ClientResponse) -> Digest | None:
        """The ``Docker-Content-Digest`` of ``resp``; one that does not parse is the
        registry's fault (a :class:`BadResponse`), not the caller's."""
        header = resp.headers.get("Docker-Content-Digest")
        if not header:
            return None
        try:
            return Digest.parse(header)
        except InvalidDigest:
            raise BadResponse(
                f"{self.host}: Docker-Content-Digest {one_line(header)[:100]!r} is not a digest",
                url=str(resp.url),
            ) from None

    def next_page(self, resp: aiohttp.ClientResponse, seen: set[str], what: str) -> str | None:
        """The URL of the page after ``resp`` (its ``Link`` header), None after the last.

        ``seen`` holds the pages read so far: a link back to one of them (a loop), or more than
        ``max_pages`` pages, is a :class:`BadResponse` rather than a listing without end.
        """
        here = str(resp.url)
        seen.add(here)
        link = next_link(resp.headers.get("Link"), here)
        if link is None:
            return None
        link = str(yarl.URL(link))
        if link in seen:
            raise BadResponse(
                f"{self.host}: the {what} pages loop (Link points back at a page already read)",
                url=link,
            )
        if len(seen) >= self.options.max_pages:
            raise BadResponse(
                f"{self.host}: the {what} goes on past {self.options.max_pages} pages; refused",
                url=link,
            )
        return link

    async def read(
        self,
        resp: aiohttp.ClientResponse,
        what: str,
        limit: int | None = None,
        too_large: Callable[[int], OCIError] | None = None,
    ) -> bytes:
        """The body of ``resp``, read as a stream and refused past ``limit`` bytes (the
        ``json_limit`` by default) with ``too_large(limit)`` or a :class:`BadResponse`."""
        limit = self.options.json_limit if limit is None else limit

        def refuse() -> OCIError:
            if too_large is not None:
                return too_large(limit)
            return BadResponse(
                f"{self.host}: the {what} is larger than the {limit}-byte limit",
                url=str(resp.url),
            )

        if resp.content_length is not None and resp.content_length > limit:
            raise refuse()
        pieces: list[bytes] = []
        held = 0
        try:
            while piece := await resp.content.read(min(limit + 1 - held, READ_CHUNK)):
                pieces.append(piece)
                held += len(piece)
                if held > limit:
                    raise refuse()
        except CONNECTION_ERRORS as exc:
            raise RegistryUnavailable(
                f"{self.host}: the {what} broke off after {held} bytes: " + one_line(describe(exc)),
                url=str(resp.url),
            ) from exc
        return b"".join(pieces)

    async def read_json(self, resp: aiohttp.ClientResponse, what: str) -> Any:
        """The JSON body of ``resp``, under the ``json_limit`` (see :meth:`read`); one that
        does not decode is a :class:`BadResponse`, however it fails (bad UTF-8, nesting too
        deep…)."""
        raw = await self.read(resp, what)
        try:
            return await off_loop(len(raw), decode_json, raw)
        except boundedjson.JSONRefused as exc:
            raise BadResponse(
                f"{self.host}: the {what} is refused: {exc}", url=str(resp.url)
            ) from None

    async def chunks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """A long body in pieces of about ``READ_CHUNK`` bytes, dropped with :class:`Trickle`
        once it arrives slower than ``min_throughput`` over a ``throughput_window``.

        Only the time spent waiting for bytes counts: a consumer slow to ask for the next piece
        does not make the registry look slow.
        """
        floor, window = self.options.min_throughput, self.options.throughput_window
        loop = asyncio.get_running_loop()
        waited, received = 0.0, 0
        pieces: list[bytes] = []
        held = 0
        while True:
            began = loop.time()
            deadline = asyncio.timeout(window - waited)
            piece: bytes | None = None
            try:
                async with deadline:
                    piece = await resp.content.readany()
            except TimeoutError:
                if not deadline.expired():
                    raise
            waited += loop.time() - began
            received += len(piece or b"")
            if waited >= window:
                if received < floor * window:
                    raise Trickle(
                        f"{received} bytes in {window:g} s, under the floor of {floor} bytes/s"
                    )
                waited, received = 0.0, 0
            if piece is None:
                continue
            if not piece:
                break
            pieces.append(piece)
            held += len(piece)
            if held >= READ_CHUNK:
                yield b"".join(pieces)
                pieces, held = [], 0
        if pieces:
            yield b"".join(pieces)

    async def raise_for(self, resp: aiohttp.ClientResponse) -> None:
        """Raise the typed error a failed answer stands for.

        The registry's message is quoted on one line, cut short, and without whatever secret
        the request carried (a hostile registry may echo the Authorization header).
        """
        body = b""
        with contextlib.suppress(*CONNECTION_ERRORS):
            body = await resp.content.read(_ERROR_BODY_LIMIT)
        code: str | None = None
        message = body.decode(errors="replace").strip() or resp.reason or "no message"
        try:
            errors = decode_json(body).get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                code = errors[0].get("code")
                message = errors[0].get("message") or message
        except (boundedjson.JSONRefused, AttributeError):
            pass
        secrets = sent_secrets(resp.request_info.headers)
        code = one_line(code, secrets) if isinstance(code, str) else None
        message = one_line(str(message), secrets)
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
