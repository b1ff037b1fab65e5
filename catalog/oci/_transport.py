"""HTTP to one registry host over aiohttp: its session, its timeouts, its errors.

What every transport shares (auth, retries, the limit, the bounds on answers) is
:class:`~catalog.oci._http.HTTPTransport`'s; this one is for servers and long runs, which
keep its connection pool busy. One-shot commands use ``_stdlib``, which imports no aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterable, Mapping
from types import SimpleNamespace

import aiohttp
import aiohttp.payload
import yarl
from aiohttp.abc import AbstractStreamWriter

from catalog.oci._http import (
    READ_CHUNK,
    Answer,
    HTTPTransport,
    Unreachable,
)
from catalog.oci.credentials import CredentialStore
from catalog.oci.options import RegistryOptions

__all__ = ["CONNECTION_ERRORS", "Transport"]

CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
_WRITE_SLICE = 1024 * 1024


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):  # its str repeats the URL
        return f"{exc.__class__.__name__}: {exc.message}"
    return f"{exc.__class__.__name__}: {exc}"


def _whole_request_timed_out(exc: BaseException) -> bool:
    """A deadline on the whole request, not aiohttp's on a connect or a read."""
    return isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ServerTimeoutError)


class Transport(HTTPTransport):
    """The HTTP side of one registry host over aiohttp: it owns the session."""

    broken = CONNECTION_ERRORS

    def __init__(
        self,
        host: str,
        options: RegistryOptions,
        credential_store: CredentialStore | None = None,
    ) -> None:
        super().__init__(host, options, credential_store)
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
            # Each redirect is checked before it is followed (the redirect rule).
            redirects = aiohttp.TraceConfig()
            redirects.on_request_redirect.append(self._on_redirect)
            # Raw bytes only: a transparently decompressed body would not match its digest.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._unbounded,
                auto_decompress=False,
                read_bufsize=READ_CHUNK,
                trace_configs=[redirects],
            )
        return self._session

    async def _on_redirect(
        self,
        _session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestRedirectParams,
    ) -> None:
        """Raises (through aiohttp, which closes the answer) where the redirect rule refuses
        the target; ``context.trace_request_ctx``: the headers first sent, whose secrets an
        error must not quote."""
        answer = params.response.headers
        # aiohttp follows a URI header where Location is missing or empty (RFC 2616's).
        location = answer.get("Location") or answer.get("URI")
        if location:  # without either, aiohttp returns the redirect's answer itself
            sent: Mapping[str, str] = context.trace_request_ctx
            self.located(str(params.url), location, sent)

    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        total: float | None,
        until_headers: float | None,
        redirects: bool,
    ) -> Answer:
        timeout = self._timeout(total, body)
        data: AsyncIterable[bytes] | bytes | _SlicedBytes | None = body
        if isinstance(body, bytes) and len(body) > _WRITE_SLICE:
            data = _SlicedBytes(body)  # a fresh one per attempt: a payload is read once
        # aiohttp's own total deadline bounds a bounded exchange, headers included; only a
        # long answer's wait for its headers needs a deadline of ours.
        deadline = contextlib.nullcontext() if total else asyncio.timeout(until_headers)
        try:
            async with deadline:
                return await self.session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    timeout=timeout,
                    allow_redirects=redirects,
                    trace_request_ctx=headers,
                )
        except aiohttp.ClientConnectorCertificateError as exc:
            raise self._untrusted(exc.certificate_error, url) from exc
        except CONNECTION_ERRORS as exc:
            if _whole_request_timed_out(exc):
                raise self._no_answer(until_headers, url) from exc
            raise Unreachable(exc) from exc
        except aiohttp.TooManyRedirects as exc:
            raise self._redirect_loop(len(exc.history), url) from exc
        except aiohttp.ClientError as exc:  # a malformed answer, an invalid redirect…
            raise self._unusable(_describe(exc), url, headers) from exc

    def _timeout(self, total: float | None, body: object) -> aiohttp.ClientTimeout:
        if total is None:
            return self._unbounded
        if not body:
            return self._bounded
        return self._client_timeout(total)

    def _client_timeout(self, total: float | None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=total,
            sock_connect=self.options.connect_timeout,
            sock_read=self.options.read_timeout,
        )

    def _canonical(self, url: str) -> str:
        return str(yarl.URL(url))


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
