"""HTTP to one registry host on the standard library (``http.client``, ``ssl``), for one-shot
commands: aiohttp's import alone costs a ``replicate once`` more than its whole run.

Same bounds and errors as aiohttp's transport (:class:`~catalog.oci._http.HTTPTransport` holds
them): each blocking step (connect and send, each read) runs on a small thread pool while the
event loop keeps the deadlines; a step past its deadline has its socket shut down, so no thread
is left waiting on a silent peer. Connections are kept alive and reused per host.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import socket
import ssl
from collections.abc import AsyncIterable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast
from urllib.parse import urljoin, urlsplit

from catalog.oci._http import MAX_REDIRECTS, READ_CHUNK, Answer, HTTPTransport, Unreachable
from catalog.oci.credentials import CredentialStore
from catalog.oci.options import RegistryOptions

_R = TypeVar("_R")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A reused keep-alive connection the registry has closed meanwhile fails like this before any
# answer: sent again once on a new connection, as HTTP clients do.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _length(value: str | None) -> int | None:
    """A Content-Length header's number, or None for any other text: headers arrive as
    latin-1, where ``isdigit()`` also takes '²', and ``int()`` refuses past 4,300 digits."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 19 else None


class _Deadline(TimeoutError):
    """A deadline of the request's (not a socket's read timeout) has passed."""


class _Connection:
    """One keep-alive connection, one request at a time; its blocking steps on the pool."""

    def __init__(
        self, conn: http.client.HTTPConnection, pool: ThreadPoolExecutor, key: tuple[str, str]
    ) -> None:
        self.http = conn
        self.pool = pool
        self.key = key
        self.reused = False
        self.dead = False
        self._pending: asyncio.Future[Any] | None = None

    @property
    def busy(self) -> bool:
        return self._pending is not None

    async def call(self, work: Callable[[], _R], within: float | None, keep: bool = False) -> _R:
        """``work()`` on the pool, within ``within`` seconds (else :class:`_Deadline`).

        A step that fails or runs out of time kills the connection; with ``keep`` a caller
        giving up (a deadline of its own) leaves the step running, and the next call awaits it.
        """
        if self._pending is None:
            if within is not None and within <= 0:
                self.abort()
                raise _Deadline
            self._pending = asyncio.get_running_loop().run_in_executor(self.pool, work)
        pending = self._pending
        try:
            try:
                # Not wait_for: Python 3.11's drops a cancellation that arrives as the step ends,
                # and a caller's deadline (asyncio.timeout) then never fires.
                async with asyncio.timeout(within):
                    result: _R = await asyncio.shield(pending)
            except TimeoutError:
                if not pending.done():
                    raise _Deadline from None
                if pending.cancelled() or pending.exception() is not None:
                    raise
                result = pending.result()  # done as the time ran out: the answer stands
        except BaseException:
            if pending.done():
                self._pending = None
            if not (keep and not pending.done()):
                self.abort()
            raise
        self._pending = None
        return result

    def abort(self) -> None:
        """Shut the socket (a step blocked on it returns at once); closed when no step runs."""
        self.dead = True
        sock = self.http.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        pending = self._pending
        if pending is None or pending.done():
            self.http.close()
            return

        def closed(step: asyncio.Future[Any]) -> None:
            if not step.cancelled():
                step.exception()  # retrieved: the connection is gone anyway
            self.http.close()

        pending.add_done_callback(closed)


def _read_some(resp: http.client.HTTPResponse, n: int) -> bytes:
    """Up to ``n`` bytes of ``resp`` (``b""`` at its end); a body cut short of its
    ``Content-Length`` raises :class:`http.client.IncompleteRead` (``read1`` would end quietly).
    A body read whole leaves the connection free for the next request."""
    if n < 0:
        return resp.read()
    piece = resp.read1(n)
    if not piece and resp.length:
        raise http.client.IncompleteRead(b"", resp.length)
    if resp.length == 0 and not resp.isclosed():
        resp.read()
    return piece


class _Body:
    def __init__(self, answer: _Answer) -> None:
        self._answer = answer

    async def read(self, n: int = -1, /) -> bytes:
        answer = self._answer
        if answer.raw.isclosed():
            return b""
        work = functools.partial(_read_some, answer.raw, n)
        return await answer.connection.call(work, answer.remaining())

    async def readany(self) -> bytes:
        answer = self._answer
        if answer.raw.isclosed():
            return b""
        work = functools.partial(_read_some, answer.raw, READ_CHUNK)
        return await answer.connection.call(work, answer.remaining(), keep=True)


class _Sent:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _Answer:
    """An answer of ``http.client`` in the shape of :class:`~catalog.oci._http.Answer`."""

    def __init__(
        self,
        transport: StdlibTransport,
        connection: _Connection,
        raw: http.client.HTTPResponse,
        url: str,
        sent: dict[str, str],
        deadline: float | None,
    ) -> None:
        self._transport = transport
        self.connection = connection
        self.raw = raw
        self.status = raw.status
        self.reason: str | None = raw.reason
        self.headers = raw.msg
        self.url = url
        self.request_info = _Sent(sent)
        self.content = _Body(self)
        self._deadline = deadline
        self._released = False
        self.content_length = _length(raw.msg.get("Content-Length"))

    def remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return self._deadline - asyncio.get_running_loop().time()

    def release(self) -> None:
        if not self._released:  # once: a connection handed back twice would serve two at once
            self._released = True
            self._transport._check_in(self.connection, self.raw)


class StdlibTransport(HTTPTransport):
    """The HTTP side of one registry host on ``http.client``: connections kept per host."""

    broken = (OSError, http.client.IncompleteRead)

    def __init__(
        self,
        host: str,
        options: RegistryOptions,
        credential_store: CredentialStore | None = None,
    ) -> None:
        super().__init__(host, options, credential_store)
        # Each request in flight holds a thread for its blocking step; a few more for steps
        # left running by a caller that gave up on them (``_Connection.call``'s ``keep``).
        self._pool = ThreadPoolExecutor(options.max_concurrency + 4, f"registry {host}")
        self._idle: dict[tuple[str, str], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.abort()
        self._idle.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _context(self) -> ssl.SSLContext:
        # Made on the first HTTPS request: loading the CA bundle is most of a TLS start-up.
        if self._tls is None:
            ca = self.options.ca_file
            self._tls = ssl.create_default_context(cafile=None if ca is None else str(ca))
        return self._tls

    def _check_out(self, scheme: str, netloc: str) -> _Connection:
        idle = self._idle.get((scheme, netloc))
        if idle:
            connection = idle.pop()
            connection.reused = True
            return connection
        timeout = self.options.connect_timeout
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(netloc, timeout=timeout, context=self._context())
        else:
            conn = http.client.HTTPConnection(netloc, timeout=timeout)
        return _Connection(conn, self._pool, (scheme, netloc))

    def _check_in(self, connection: _Connection, raw: http.client.HTTPResponse) -> None:
        if connection.dead:
            return
        if not raw.isclosed() or connection.busy:
            connection.abort()  # a body left unread: the connection cannot serve again
            return
        self._idle.setdefault(connection.key, []).append(connection)

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
        now = asyncio.get_running_loop().time()
        deadline = None if total is None else now + total
        headers_by = None if until_headers is None else now + until_headers
        redirected = 0
        while True:
            try:
                answer = await self._attempt(method, url, headers, body, deadline, headers_by)
            except _Deadline as exc:
                raise self._no_answer(until_headers, url) from exc
            except ssl.SSLCertVerificationError as exc:
                raise self._untrusted(exc, url) from exc
            except OSError as exc:
                raise Unreachable(exc) from exc
            except http.client.HTTPException as exc:  # a malformed answer, a bad URL…
                raise self._unusable(f"{exc.__class__.__name__}: {exc}", url) from exc
            location = answer.headers.get("Location")
            replayable = not isinstance(body, AsyncIterable)
            if not (redirects and replayable and answer.status in _REDIRECTS and location):
                return answer
            answer.release()
            redirected += 1
            if redirected >= MAX_REDIRECTS:
                raise self._redirect_loop(redirected, url)
            target = urljoin(url, location)
            if urlsplit(target).scheme not in ("http", "https") or not urlsplit(target).hostname:
                raise self._unusable(f"redirected to {location[:200]!r}, not an HTTP URL", url)
            if _origin(target) != _origin(url):
                # Credentials stay with the host they were meant for (a blob's storage is not).
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if (answer.status == 303 and method != "HEAD") or (
                answer.status in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
            url = target

    async def _attempt(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | AsyncIterable[bytes] | None,
        deadline: float | None,
        headers_by: float | None,
    ) -> _Answer:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        loop = asyncio.get_running_loop()

        def left() -> float | None:
            return None if headers_by is None else headers_by - loop.time()

        while True:
            connection = self._check_out(parts.scheme, parts.netloc)
            try:
                if isinstance(body, AsyncIterable):
                    raw = await self._send_stream(connection, method, target, headers, body, left)
                else:
                    exchange = functools.partial(
                        self._exchange, connection.http, method, target, headers, body
                    )
                    raw = await connection.call(exchange, left())
            except _STALE:
                if connection.reused and not isinstance(body, AsyncIterable):
                    continue  # closed by the registry while idle: once more, on a new one
                raise
            return _Answer(self, connection, raw, url, headers, deadline)

    def _connect(self, conn: http.client.HTTPConnection) -> None:
        if conn.sock is None:
            conn.connect()  # within connect_timeout; then each read within read_timeout
            cast(socket.socket, conn.sock).settimeout(self.options.read_timeout)

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
    ) -> http.client.HTTPResponse:
        self._connect(conn)
        conn.request(method, target, body, headers)
        return _answered(conn)

    async def _send_stream(
        self,
        connection: _Connection,
        method: str,
        target: str,
        headers: dict[str, str],
        body: AsyncIterable[bytes],
        left: Callable[[], float | None],
    ) -> http.client.HTTPResponse:
        conn = connection.http
        chunked = not any(k.lower() == "content-length" for k in headers)

        def start() -> None:
            self._connect(conn)
            conn.putrequest(method, target)
            for name, value in headers.items():
                conn.putheader(name, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()

        await connection.call(start, left())
        async for piece in body:
            if piece:
                framed = b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece
                await connection.call(functools.partial(conn.send, framed), left())

        def finish() -> http.client.HTTPResponse:
            if chunked:
                conn.send(b"0\r\n\r\n")
            return _answered(conn)

        return await connection.call(finish, left())


def _answered(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    raw = conn.getresponse()
    if raw.length == 0:
        raw.read()  # no body (HEAD, 204, 304…): done, and the connection free again
    return raw


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
