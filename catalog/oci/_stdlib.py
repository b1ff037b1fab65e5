"""HTTP/1.1 to one registry host on asyncio's own streams, for one-shot commands: aiohttp's
import alone costs a ``replicate once`` more than its whole run.

Same bounds and errors as aiohttp's transport (:class:`~catalog.oci._http.HTTPTransport` holds
them). Every step runs on the event loop within its deadline (no thread per step, as
``http.client`` needed, and no e-mail parser per answer). An answer's head is read here, bounded:
a status or header line at most :data:`MAX_LINE` bytes, at most :data:`MAX_HEADERS` fields, no
folded lines, no control characters; a body is framed by its ``Content-Length``, its chunks, or
the connection's end, and a body cut short is a broken connection. Connections are kept alive and
reused per host.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterable, Awaitable
from typing import TypeVar, overload
from urllib.parse import urljoin, urlsplit

from catalog.oci._http import MAX_REDIRECTS, READ_CHUNK, Answer, HTTPTransport, Unreachable
from catalog.oci.credentials import CredentialStore
from catalog.oci.errors import SizeMismatch
from catalog.oci.options import RegistryOptions

_R = TypeVar("_R")
_D = TypeVar("_D")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Sent again on a new connection when a reused one proves closed (RFC 9112 §9.3.1), as aiohttp.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# http.client's bounds on an answer's head: a line, and the fields.
MAX_LINE = 64 * 1024
MAX_HEADERS = 100
# A request body is written in pieces of this size, each held to the read timeout on its own: a
# reader taking 256 KiB per timeout (60 s by default) is slow, not gone.
WRITE_PIECE = 256 * 1024
# Interim (1xx) answers skipped before the final one, and the digits of a chunk's size.
_MAX_INTERIM = 5
_MAX_CHUNK_DIGITS = 16
_HEXDIG = b"0123456789abcdefABCDEF"
# Checked with bytes and str methods, not regular expressions: compiling a few patterns costs a
# command more at its start than parsing all its answers.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# What an answer's field value may not hold: control characters but HTAB (a DEL passes, as the
# other transport takes it: the value is judged where it is used).
_CONTROLS = bytes(range(0x20)).replace(b"\t", b"")


def _is_token(name: bytes) -> bool:
    return bool(name) and not name.translate(None, _TCHAR)


def _is_clean(value: bytes) -> bool:
    return len(value.translate(None, _CONTROLS)) == len(value)


def _sendable(value: str) -> bool:
    """Whether ``value`` may go into a request's line or field: printable (no CR or LF to start
    a field of the peer's choosing, no control character), tabs aside."""
    return value.replace("\t", " ").isprintable()


def _length(value: str | None) -> int | None:
    """A Content-Length header's number, or None for any other text: headers arrive as
    latin-1, where ``isdigit()`` also takes '²', and ``int()`` refuses past 4,300 digits."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 19 else None


class _Deadline(TimeoutError):
    """A deadline of the request's (not the per-read timeout) has passed."""


class _Malformed(Exception):
    """An answer that is not HTTP/1.1 (said in one line)."""


class _Cut(ConnectionError):
    """The connection ended, or its framing broke, in the middle of an answer."""


class _Stale(_Cut):
    """A reused connection ended before any answer: the registry closed it while idle."""


class _Headers:
    """An answer's fields by lower-cased name; the first of a repeated name (as
    ``http.client`` and aiohttp answer ``get``)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields

    @overload
    def get(self, key: str, /) -> str | None: ...

    @overload
    def get(self, key: str, default: _D, /) -> str | _D: ...

    def get(self, key: str, default: object = None, /) -> object:
        return self._fields.get(key.lower(), default)


class _HeadLines:
    """The lines of an answer's head, cut from blocks read off the connection: one read for a
    whole head as it usually arrives (its body often with it), not a step per line. What is
    read past the head stays with the connection (``early``) for the body."""

    __slots__ = ("_at", "_buffer", "_connection", "_scanned", "received")

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._buffer = bytearray(connection.early)
        connection.early = b""
        self._at = self._scanned = 0  # where the next line starts; how far it was searched
        self.received = bool(self._buffer)  # whether any byte of an answer came

    async def line(self) -> bytes:
        """One line without its end (CRLF, or a bare LF as RFC 9112 allows a recipient to
        take), of at most :data:`MAX_LINE` bytes before its end."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", max(self._at, self._scanned))
            if end - self._at > MAX_LINE or (end < 0 and len(buffer) - self._at > MAX_LINE):
                raise _Malformed(f"a line of the answer's head is over {MAX_LINE} bytes")
            if end >= 0:
                line = bytes(buffer[self._at : end])
                self._at = end + 1
                return line[:-1] if line.endswith(b"\r") else line
            self._scanned = len(buffer)  # a trickled line is searched once, not per byte
            more = await self._connection.reader.read(MAX_LINE)  # what has come, at least a byte
            if not more:
                raise _Cut("the connection ended in the answer's head")
            self.received = True
            del buffer[: self._at]  # the lines taken; an unfinished one stays
            self._scanned -= self._at
            self._at = 0
            buffer += more

    def done(self) -> None:
        """The head is read: what came after it is the body's."""
        with memoryview(self._buffer) as view:  # one copy (a bytearray's slice is one more)
            self._connection.early = bytes(view[self._at :])


def _field(line: bytes) -> tuple[str, str]:
    """One header (or trailer) line's lower-cased name and value."""
    if line[0] in b" \t":
        raise _Malformed("a folded header line (obsolete line folding is refused)")
    name, colon, value = line.partition(b":")
    if not colon or not _is_token(name):
        raise _Malformed("a header line without a field name")
    value = value.strip(b" \t")
    if not _is_clean(value):
        raise _Malformed("a control character in a header's value")
    return name.decode().lower(), value.decode("latin-1")


async def _fields(lines: _HeadLines) -> dict[str, str]:
    """A head's fields, up to the empty line."""
    fields: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await lines.line()
        if not line:
            return fields
        key, text = _field(line)
        if key in fields:
            if key in ("content-length", "transfer-encoding") and fields[key] != text:
                raise _Malformed(f"two different {key} headers")
            continue
        fields[key] = text
    raise _Malformed(f"more than {MAX_HEADERS} header lines")


class _Head:
    __slots__ = ("chunked", "fields", "length", "reason", "status", "will_close")

    def __init__(self, status: int, reason: str, fields: dict[str, str], http10: bool) -> None:
        self.status, self.reason, self.fields = status, reason, fields
        tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
        self.will_close = "close" in tokens or (http10 and "keep-alive" not in tokens)
        coding = fields.get("transfer-encoding")
        self.chunked = coding is not None
        if coding is not None and coding.strip().lower() != "chunked":
            raise _Malformed("a transfer-encoding other than chunked")
        if self.chunked and "content-length" in fields:
            self.will_close = True  # both framings (RFC 9112 §6.3): the chunks, then no reuse
        self.length: int | None = None
        if not self.chunked and "content-length" in fields:
            self.length = _length(fields["content-length"])
            if self.length is None:
                raise _Malformed("a content-length that is not a number")


async def _read_head(connection: _Connection, method: str) -> _Head:
    lines = _HeadLines(connection)
    for _ in range(_MAX_INTERIM + 1):
        try:
            line = await lines.line()
        except _Cut:
            if lines.received:
                raise  # a byte of an answer came: the request was taken
            raise _Stale("the connection ended before an answer") from None
        version, _, rest = line.partition(b" ")
        code, reason = rest[:3], rest[4:]
        if (
            version not in (b"HTTP/1.1", b"HTTP/1.0")
            or not (len(code) == 3 and code.isdigit() and code[0] != 48)  # 48: "0"
            or rest[3:4] not in (b"", b" ")
            or not _is_clean(reason)
        ):
            raise _Malformed("not an HTTP/1.x status line")
        status = int(code)
        fields = await _fields(lines)
        if status >= 200:
            lines.done()
            head = _Head(status, reason.decode("latin-1"), fields, version == b"HTTP/1.0")
            if method == "HEAD" or status in (204, 304):
                head.chunked, head.length = False, 0
            elif not head.chunked and head.length is None:
                head.will_close = True  # the body ends with the connection
            return head
        if status == 101:
            raise _Malformed("the registry switched protocols")
    raise _Malformed(f"more than {_MAX_INTERIM} interim answers")


class _Connection:
    """One keep-alive connection, one request at a time."""

    __slots__ = ("dead", "early", "key", "reader", "reused", "writer")

    def __init__(
        self, key: tuple[str, str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.key = key
        self.reader = reader
        self.writer = writer
        self.reused = False
        self.dead = False
        self.early = b""  # bytes received past an answer's head, its body's (or beyond it)

    def abort(self) -> None:
        if not self.dead:
            self.dead = True
            self.writer.transport.abort()


# Where a chunked body stands between chunks' data: its size line next, the CRLF ending a chunk,
# or a line of its trailer.
_SIZE, _END, _TRAILER = range(3)


class _Body:
    """An answer's body, read as it is framed; the connection is free once it is read whole.

    A chunked body is taken from the stream in blocks and its chunks parsed from them here:
    a read returns every chunk's data already received, up to its size, not one chunk (a body
    of tiny chunks would cost a step and an object per chunk).
    """

    __slots__ = ("_answer", "_buffer", "_chunked", "_done", "_left", "_phase", "_trailer")

    def __init__(self, answer: _Answer, head: _Head) -> None:
        self._answer = answer
        self._chunked = head.chunked
        self._left = head.length  # of the body, or of the current chunk (0: see _phase)
        self._done = head.length == 0
        self._phase = _SIZE
        self._trailer = 0  # trailer lines read
        self._buffer = bytearray()  # of a chunked body: received, not yet parsed
        if self._chunked:  # what came with the head is its first bytes
            connection = answer.connection
            self._buffer += connection.early
            connection.early = b""

    @property
    def done(self) -> bool:
        return self._done

    async def read(self, n: int = -1, /) -> bytes:
        if self._done or n == 0:  # the end, told without a step
            return b""
        if n > 0:
            if self._answer.connection.early and not self._chunked:
                return self._early(n)  # received with the head: no step, no timer
            return await self._answer.step(self._piece(n))
        whole = bytearray()
        while not self.done:  # (a property: re-read after each step)
            whole += await self._answer.step(self._piece(READ_CHUNK))
        return bytes(whole)

    async def readany(self) -> bytes:
        if self._done:
            return b""
        if self._answer.connection.early and not self._chunked:
            return self._early(READ_CHUNK)
        # A caller's own deadline may cancel this (the throughput window): the only await below
        # is a read of the stream, made with nothing parsed in hand, so the next call goes on.
        return await self._answer.step(self._piece(READ_CHUNK), keep=True)

    async def _piece(self, n: int) -> bytes:
        if not self._chunked:
            return await self._data(n)
        reader = self._answer.connection.reader
        while True:
            try:
                piece = self._parse(n)
            except _Malformed as exc:  # a line too long, a trailer too large
                raise _Cut(str(exc)) from None
            if piece or self._done:
                if self._done and self._buffer:  # bytes past the end: no reuse
                    self._answer.will_close = True
                return piece
            more = await reader.read(READ_CHUNK)
            if not more:
                raise _Cut("the connection ended in a chunked body")
            self._buffer += more

    def _parse(self, n: int) -> bytes:
        """The chunks' data in the buffer, up to ``n`` bytes, parsing lines as they come."""
        buffer, out = self._buffer, bytearray()
        while len(out) < n and not self._done:
            if self._left:
                take = min(self._left, n - len(out), len(buffer))
                if not take:
                    break
                out += buffer[:take]
                del buffer[:take]  # from the front: cheap for a bytearray
                self._left -= take
                continue
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > MAX_LINE:
                    raise _Malformed(f"a line of the chunked body is over {MAX_LINE} bytes")
                break
            if end > MAX_LINE:
                raise _Malformed(f"a line of the chunked body is over {MAX_LINE} bytes")
            line = bytes(buffer[: end - 1 if end and buffer[end - 1] == 13 else end])  # 13: CR
            del buffer[: end + 1]
            if self._phase == _END:
                if line:
                    raise _Cut("a chunk longer than its size")
                self._phase = _SIZE
            elif self._phase == _SIZE:
                self._left = _chunk_size(line)
                self._phase = _END if self._left else _TRAILER
            elif line:  # a trailer's field, bounded as a head's are
                _field(line)
                self._trailer += 1
                if self._trailer > MAX_HEADERS:
                    raise _Malformed(f"more than {MAX_HEADERS} header lines")
            else:
                self._done = True
        return bytes(out)

    def _early(self, n: int) -> bytes:
        """Up to ``n`` bytes of the body received with the head (past its end: left there, so
        that the connection is not reused)."""
        connection, left = self._answer.connection, self._left
        early = connection.early
        take = min(n, len(early)) if left is None else min(n, len(early), left)
        piece, connection.early = early[:take], early[take:]
        if left is not None:
            self._left = left - take
            self._done = not self._left
        return piece

    async def _data(self, n: int) -> bytes:
        if self._answer.connection.early:
            return self._early(n)
        left = self._left
        piece = await self._answer.connection.reader.read(n if left is None else min(n, left))
        if left is None:  # until the connection ends
            self._done = not piece
            return piece
        if not piece:
            raise _Cut(f"the body ended {left} bytes short")
        self._left = left - len(piece)
        if not self._left:
            self._done = True
        return piece


def _chunk_size(line: bytes) -> int:
    """A size line's number: 1*HEXDIG, then spaces or tabs only before a ``;`` extension
    (RFC 9112 §7.1; no sign, no ``0x``, no leading space, as ``int()`` would take)."""
    digits, semicolon, _ = line.partition(b";")
    if semicolon:
        digits = digits.rstrip(b" \t")
    if not 0 < len(digits) <= _MAX_CHUNK_DIGITS or digits.translate(None, _HEXDIG):
        raise _Cut("a bad chunk size")
    return int(digits, 16)


class _Sent:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _Answer:
    """An answer in the shape of :class:`~catalog.oci._http.Answer`."""

    def __init__(
        self,
        transport: StdlibTransport,
        connection: _Connection,
        head: _Head,
        url: str,
        sent: dict[str, str],
        deadline: float | None,
    ) -> None:
        self._transport = transport
        self.connection = connection
        self.status = head.status
        self.reason: str | None = head.reason
        self.headers = _Headers(head.fields)
        self.url = url
        self.request_info = _Sent(sent)
        self._deadline = deadline
        self.will_close = head.will_close
        self._released = False
        self.content_length = _length(head.fields.get("content-length"))
        self.content = _Body(self, head)

    async def step(self, work: Awaitable[_R], keep: bool = False) -> _R:
        """``work`` within the request's deadline and the per-read timeout; past either, or on
        any failure, the connection is dropped (unless ``keep`` and a caller gave up)."""
        return await self._transport._within(self.connection, work, self._deadline, keep)

    def release(self) -> None:
        if not self._released:  # once: a connection handed back twice would serve two at once
            self._released = True
            connection = self.connection
            # Bytes past the answer's end (``early`` left over): not an answer to the next.
            if self.content.done and not self.will_close and not connection.early:
                self._transport._check_in(connection)
            else:
                connection.abort()  # a body left unread, or one the connection's end closes


class StdlibTransport(HTTPTransport):
    """The HTTP side of one registry host on asyncio's streams: connections kept per host."""

    broken = (OSError,)

    def __init__(
        self,
        host: str,
        options: RegistryOptions,
        credential_store: CredentialStore | None = None,
    ) -> None:
        super().__init__(host, options, credential_store)
        self._idle: dict[tuple[str, str], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.abort()
        self._idle.clear()

    def _context(self) -> ssl.SSLContext:
        # Made on the first HTTPS request: loading the CA bundle is most of a TLS start-up.
        if self._tls is None:
            ca = self.options.ca_file
            self._tls = ssl.create_default_context(cafile=None if ca is None else str(ca))
        return self._tls

    async def _within(
        self, connection: _Connection, work: Awaitable[_R], deadline: float | None, keep: bool
    ) -> _R:
        """``work`` on ``connection`` until ``deadline`` (loop time; :class:`_Deadline` past
        it), each step within the read timeout (a ``TimeoutError``, a broken connection)."""
        loop = asyncio.get_running_loop()
        limit = self.options.read_timeout
        left = None if deadline is None else deadline - loop.time()
        by_deadline = left is not None and left <= limit
        try:
            async with asyncio.timeout(left if by_deadline else limit):
                return await work
        except TimeoutError:
            connection.abort()
            if by_deadline:
                raise _Deadline from None
            raise TimeoutError(f"no bytes for {limit:g} s") from None
        except asyncio.CancelledError:
            if not keep:
                connection.abort()
            raise
        except BaseException:
            connection.abort()
            raise

    async def _check_out(self, scheme: str, netloc: str, deadline: float | None) -> _Connection:
        idle = self._idle.get((scheme, netloc))
        while idle:
            connection = idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                connection.reused = True
                return connection
            connection.abort()
        host, port = _address(scheme, netloc)
        tls = self._context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        limit = self.options.connect_timeout
        left = None if deadline is None else deadline - loop.time()
        by_deadline = left is not None and left <= limit
        try:
            async with asyncio.timeout(left if by_deadline else limit):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=MAX_LINE
                )
        except TimeoutError:
            if by_deadline:
                raise _Deadline from None
            raise TimeoutError(f"no connection within {limit:g} s") from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection((scheme, netloc), reader, writer)

    def _check_in(self, connection: _Connection) -> None:
        if not connection.dead:
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
        sent = headers  # their secrets blanked out of errors, after a redirect that drops them too
        now = asyncio.get_running_loop().time()
        deadline = None if total is None else now + total
        headers_by = None if until_headers is None else now + until_headers
        redirected = 0
        while True:
            try:
                answer = await self._attempt(method, url, headers, body, deadline, headers_by)
                target = self._redirect(answer, url, sent, redirects and _replayable(body))
            except _Deadline as exc:
                raise self._no_answer(until_headers, url) from exc
            except ssl.SSLCertVerificationError as exc:
                raise self._untrusted(exc, url) from exc
            except OSError as exc:
                raise Unreachable(exc) from exc
            except _Malformed as exc:
                raise self._unusable(f"a malformed answer: {exc}", url, sent) from exc
            # A backstop: urllib refusing a URL (a Location) it was handed.
            except ValueError as exc:
                raise self._unusable("a URL that cannot be parsed", url, sent) from exc
            if target is None:
                return answer
            redirected += 1
            if redirected >= MAX_REDIRECTS:
                raise self._redirect_loop(redirected, url)
            if _origin(target) != _origin(url):
                # Credentials stay with the host they were meant for (a blob's storage is not).
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if (answer.status == 303 and method != "HEAD") or (
                answer.status in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
            url = target

    def _redirect(
        self, answer: _Answer, url: str, sent: dict[str, str], follow: bool
    ) -> str | None:
        """Where ``answer`` sends the request next (released), when it is a redirect to follow."""
        location = answer.headers.get("Location")
        if not (follow and answer.status in _REDIRECTS and location):
            return None
        answer.release()
        target = urljoin(url, location)
        try:
            _address(urlsplit(target).scheme, urlsplit(target).netloc)
        except _Malformed:
            raise self._unusable(
                f"redirected to {location[:200]!r}, not an HTTP URL", url, sent
            ) from None
        self._check_redirect(target, url, sent)
        return target

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
        streamed = isinstance(body, AsyncIterable)
        head, chunked = _request_head(method, target, parts.netloc, headers, body, streamed)
        declared = _length(
            next((v for k, v in headers.items() if k.lower() == "content-length"), None)
        )
        while True:
            connection = await self._check_out(parts.scheme, parts.netloc, headers_by)
            try:
                answered = await self._exchange(
                    connection, method, head, body, chunked, headers_by, declared
                )
            except _Stale:
                if connection.reused and not streamed and method in _IDEMPOTENT:
                    continue  # closed by the registry while idle: once more, on a new one
                raise
            except BaseException:
                connection.abort()  # a stream of the caller's failed between steps
                raise
            return _Answer(self, connection, answered, url, headers, deadline)

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        head: bytes,
        body: bytes | AsyncIterable[bytes] | None,
        chunked: bool,
        headers_by: float | None,
        declared: int | None,
    ) -> _Head:
        """The request, then the answer's head: the body written in pieces of at most
        :data:`WRITE_PIECE` bytes, each piece's drain and the head's read within the read
        timeout (and ``headers_by``): a large body to a slow reader, or a stream however long
        the caller takes to make its pieces, is held to the timeout per piece, not as a whole."""
        writer = connection.writer

        async def send(data: bytes | memoryview) -> None:
            for start in range(0, len(data), WRITE_PIECE):
                writer.write(data[start : start + WRITE_PIECE])
                if not (writer.transport.get_write_buffer_size() or writer.is_closing()):
                    continue  # all in the socket (a request's head): no wait, and no timer
                try:
                    await self._within(connection, writer.drain(), headers_by, keep=False)
                except (ConnectionResetError, BrokenPipeError) as exc:
                    raise _Stale("the connection ended before the request was sent") from exc

        if not isinstance(body, AsyncIterable):
            if body and len(body) > WRITE_PIECE:
                await send(head)
                await send(memoryview(body))  # not copied after the head
            else:
                await send(head + body if body else head)
        else:
            await send(head)
            sent = 0
            async for piece in body:
                sent += len(piece)
                if declared is not None and sent > declared:
                    raise SizeMismatch(declared, sent, "streamed body (its Content-Length)")
                if piece:
                    await send(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
            if declared is not None and sent != declared:
                raise SizeMismatch(declared, sent, "streamed body (its Content-Length)")
            if chunked:
                await send(b"0\r\n\r\n")
        return await self._within(
            connection, _read_head(connection, method), headers_by, keep=False
        )


def _request_head(
    method: str,
    target: str,
    netloc: str,
    headers: dict[str, str],
    body: bytes | AsyncIterable[bytes] | None,
    streamed: bool,
) -> tuple[bytes, bool]:
    """The request line and fields, and whether the body goes in chunks. Refused
    (:class:`_Malformed`) when a URL or a value from an answer (a ``Location``, a token) would
    break out of its place."""
    if not (target.isascii() and target.isprintable() and " " not in target and _sendable(netloc)):
        raise _Malformed(f"a request target with a space or control character: {target[:200]!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {netloc}"]
    names = set()
    for name, value in headers.items():
        if not (name.isascii() and _is_token(name.encode()) and _sendable(value)):
            raise _Malformed(f"header {name[:60]!r} has a character it may not hold")
        lines.append(f"{name}: {value}")
        names.add(name.lower())
    if "accept-encoding" not in names:
        lines.append("Accept-Encoding: identity")
    chunked = streamed and "content-length" not in names
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif (
        not streamed
        and "content-length" not in names
        and (body or method in ("POST", "PUT", "PATCH"))
    ):
        lines.append(f"Content-Length: {len(body) if isinstance(body, bytes) else 0}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), chunked
    except UnicodeEncodeError:
        raise _Malformed("a header value outside latin-1") from None


def _address(scheme: str, netloc: str) -> tuple[str, int]:
    """The host and port to connect to; :class:`_Malformed` for a URL (a ``Location`` of the
    registry's) not HTTP, without a host, or with a port that is no port (``:abc``,
    ``:99999``: urllib raises ``ValueError``)."""
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise _Malformed("a URL without an HTTP scheme, a host, or a port from 1 to 65535")
    return parts.hostname, port or (443 if scheme == "https" else 80)


def _replayable(body: bytes | AsyncIterable[bytes] | None) -> bool:
    """Whether a body can be sent again (after a redirect): a stream is sent once."""
    return not isinstance(body, AsyncIterable)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
