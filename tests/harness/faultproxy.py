"""A fault-injecting HTTP/1.1 reverse proxy for putting in front of a registry.

It runs an aiohttp server and client on their own event loop in a daemon thread and streams
bodies both ways. Faults are programmed from the test thread; each request consumes at most one
rule (the oldest matching one), and `latency` applies to every request.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Literal

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

Kind = Literal["fail", "reset", "corrupt", "hang"]
Action = Literal["forward", "fail", "reset", "corrupt", "hang", "error"]

CHUNK = 256 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        # Not hop-by-hop by RFC, but the proxy answers 100-continue itself.
        "expect",
    }
)


def registry_error(code: str, message: str = "") -> bytes:
    """A Distribution error body, e.g. registry_error("TOOMANYREQUESTS", "slow down")."""
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


@dataclass
class _Rule:
    kind: Kind
    remaining: int
    pattern: re.Pattern[str] | None
    method: str | None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    after_headers: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.pattern is None or self.pattern.search(path) is not None


@dataclass
class ProxyEvent:
    """One request the proxy saw (logged on arrival) and what it did with it."""

    method: str
    path: str
    query: str
    action: Action
    status: int | None  # status sent to the client; None while in flight, reset or broken
    time: float


class FaultProxy:
    """See module docstring; use `run_proxy`."""

    def __init__(self, upstream_url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.upstream = upstream_url.rstrip("/")
        self.latency = 0.0  # seconds added before forwarding each request
        self.port = 0
        self._ssl = ssl_context
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._events: list[ProxyEvent] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- programming faults ------------------------------------------------------------------

    def _add(self, rule: _Rule) -> None:
        if rule.remaining > 0:
            with self._lock:
                self._rules.append(rule)

    @staticmethod
    def _compile(match: str | None) -> re.Pattern[str] | None:
        return re.compile(match) if match is not None else None

    def fail(
        self,
        n: int,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        match: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next n matching requests with `status` without forwarding them."""
        hdrs = dict(headers or {})
        if body and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        self._add(_Rule("fail", n, self._compile(match), method, status, hdrs, body))

    def reset(self, n: int, match: str | None = None, method: str | None = None) -> None:
        """Abort the connection (TCP RST, no response) for the next n matching requests."""
        self._add(_Rule("reset", n, self._compile(match), method))

    def corrupt(self, n: int, match: str | None = None, method: str | None = None) -> None:
        """Forward, but flip one bit of a response body byte (the middle one when the length is
        known, else the first), keeping the length, for the next n matching requests."""
        self._add(_Rule("corrupt", n, self._compile(match), method))

    def hang(
        self,
        n: int,
        seconds: float,
        match: str | None = None,
        method: str | None = None,
        *,
        after_headers: bool = False,
    ) -> None:
        """Delay the next n matching responses by `seconds`: before forwarding, or with
        after_headers=True after the headers and part of the body (a stalled download)."""
        pattern = self._compile(match)
        self._add(_Rule("hang", n, pattern, method, seconds=seconds, after_headers=after_headers))

    def clear(self) -> None:
        """Drop pending faults and latency (the request log stays)."""
        with self._lock:
            self._rules.clear()
        self.latency = 0.0

    def pending(self) -> int:
        """How many programmed faults have not fired yet."""
        with self._lock:
            return sum(r.remaining for r in self._rules)

    def _take(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    # -- counters ------------------------------------------------------------------------------

    @property
    def events(self) -> list[ProxyEvent]:
        """Copies of every request's record, oldest first."""
        with self._lock:
            return [replace(e) for e in self._events]

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request seen, oldest first (a snapshot)."""
        return [(e.method, e.path) for e in self.events]

    def count(
        self, method: str | None = None, match: str | None = None, action: Action | None = None
    ) -> int:
        """Requests seen with this method (None: any) whose path matches the regex."""
        pattern = self._compile(match)
        return sum(
            1
            for e in self.events
            if (method is None or e.method == method.upper())
            and (pattern is None or pattern.search(e.path))
            and (action is None or e.action == action)
        )

    def reset_counters(self) -> None:
        with self._lock:
            self._events.clear()

    def _record(self, request: web.Request, action: Action) -> ProxyEvent:
        event = ProxyEvent(
            request.method, request.path, request.query_string, action, None, time.time()
        )
        with self._lock:
            self._events.append(event)
        return event

    def _update(self, event: ProxyEvent, action: Action, status: int | None) -> None:
        with self._lock:
            event.action = action
            event.status = status

    # -- proxying ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rule = self._take(request.method, request.path)
        event = self._record(request, rule.kind if rule is not None else "forward")
        try:
            return await self._handle_one(request, rule, event)
        except Exception:
            self._update(event, "error", None)
            raise

    async def _handle_one(
        self, request: web.Request, rule: _Rule | None, event: ProxyEvent
    ) -> web.StreamResponse:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if rule is not None and rule.kind == "reset":
            _abort(request)
            return web.Response()  # never written: the transport is gone
        if rule is not None and rule.kind == "fail":
            await _drain(request)  # so the client sees the answer, not a broken upload
            self._update(event, "fail", rule.status)
            return web.Response(status=rule.status, body=rule.body, headers=rule.headers)
        if rule is not None and rule.kind == "hang" and not rule.after_headers:
            await asyncio.sleep(rule.seconds)
        return await self._forward(request, rule, event)

    async def _forward(
        self, request: web.Request, rule: _Rule | None, event: ProxyEvent
    ) -> web.StreamResponse:
        assert self._session is not None
        headers = _forward_headers(request.headers)
        headers.setdefault("X-Forwarded-Proto", "http")  # registry Location URLs stay on us
        target = request.raw_path
        if not target.startswith("/"):  # absolute-form request target: keep path and query
            target = URL(target, encoded=True).raw_path_qs
        try:
            upstream = await self._session.request(
                request.method,
                URL(self.upstream + target, encoded=True),
                headers=headers,
                data=request.content if request.body_exists else None,
                allow_redirects=False,
                # Forward exactly what the client sent: no default Accept or Content-Type.
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            )
        except (aiohttp.ClientError, OSError) as exc:
            self._update(event, "error", 502)
            return web.Response(status=502, text=f"fault proxy: upstream failed: {exc!r}\n")
        async with upstream:
            self._update(event, event.action, upstream.status)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            flip_at: int | None = None
            if rule is not None and rule.kind == "corrupt":
                flip_at = (upstream.content_length or 0) // 2
            stall = rule.seconds if rule is not None and rule.after_headers else 0.0
            try:
                await _copy_body(request, upstream, response, flip_at, stall)
                await response.write_eof()
            except (aiohttp.ClientError, OSError):
                # Headers are gone already: all we can do is cut the connection.
                self._update(event, "error", upstream.status)
                _abort(request)
            return response

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.run_until_complete(self._astop())
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=main, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self.stop()
            raise RuntimeError("fault proxy failed to start") from (failure[0] if failure else None)

    async def _astart(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True),
            auto_decompress=False,  # bytes pass through untouched
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            read_bufsize=CHUNK,
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client giving up ends its hang instead of leaking it.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()  # port 0: the kernel picks
        self.port = self._runner.addresses[0][1]

    async def _astop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self._astop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _forward_headers(incoming: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    # Headers named in Connection are hop-by-hop too (RFC 9110 section 7.6.1).
    named = {
        token.strip().lower()
        for value in incoming.getall("Connection", [])
        for token in value.split(",")
    }
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in incoming.items():
        if key.lower() not in HOP_BY_HOP and key.lower() not in named:
            out.add(key, value)
    return out


async def _copy_body(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    response: web.StreamResponse,
    flip_at: int | None,
    stall: float,
) -> None:
    offset = 0
    if request.method != "HEAD":
        async for chunk in upstream.content.iter_chunked(CHUNK):
            if flip_at is not None and offset <= flip_at < offset + len(chunk):
                data = bytearray(chunk)
                data[flip_at - offset] ^= 0x01
                chunk = bytes(data)
            offset += len(chunk)
            if stall:
                # Send part of the body, then stall: the client must not be able to finish.
                half = len(chunk) // 2
                await response.write(chunk[:half])
                await asyncio.sleep(stall)
                stall = 0.0
                chunk = chunk[half:]
            await response.write(chunk)
    if stall:
        await asyncio.sleep(stall)


async def _drain(request: web.Request) -> None:
    if request.body_exists:
        while await request.content.read(CHUNK):
            pass


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0 turns close() into a RST, like a load balancer dropping the connection.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@contextmanager
def run_proxy(
    upstream_url: str, *, ssl_context: ssl.SSLContext | None = None
) -> Iterator[FaultProxy]:
    """Start a proxy to `upstream_url` (pass ssl_context for an https registry)."""
    proxy = FaultProxy(upstream_url, ssl_context=ssl_context)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
