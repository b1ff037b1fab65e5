"""A hostile registry and a recorder, on loopback: for tests that credentials go nowhere else.

The hostile registry answers every ``/v2/`` request with 401 and a challenge of its choosing (a
bearer realm on another server, or basic), and can redirect an authenticated request elsewhere.
The recorder answers like a token server and keeps every request it receives, headers included.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Recorder:
    """Every request received: (path, Authorization header or None)."""

    port: int = 0
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    answer: tuple[int, bytes] | None = None  # what to answer instead of a token

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def authorizations(self) -> list[str]:
        return [auth for _, auth in self.seen if auth is not None]

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path_qs, request.headers.get("Authorization")))
        if self.answer is not None:
            return web.Response(status=self.answer[0], body=self.answer[1])
        return web.json_response({"token": "recorded", "expires_in": 300})


@dataclass
class HostileRegistry:
    """``challenge``: the WWW-Authenticate it sends; ``redirect``: where an authenticated
    request is sent on (None: answered 200)."""

    challenge: str = ""
    redirect: str | None = None
    token_redirect: str | None = None  # where its own token server sends a request (307)
    port: int = 0
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # with the method

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        self.seen.append((request.path_qs, auth))
        self.requests.append((request.method, request.path_qs, auth))
        if request.path == "/token":  # its own token server, on its own host and port
            if self.token_redirect is not None:  # 307: a client following it resends the body
                raise web.HTTPTemporaryRedirect(self.token_redirect)
            return web.json_response({"token": "own", "expires_in": 300})
        if auth is None:
            return web.Response(status=401, headers={"WWW-Authenticate": self.challenge})
        if self.redirect is not None:
            raise web.HTTPFound(self.redirect)
        return web.json_response({}, headers={"Docker-Distribution-API-Version": "registry/2.0"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(handler: Handler) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = runner.addresses[0][1]
    return runner, port


@contextlib.asynccontextmanager
async def hostile_pair() -> AsyncIterator[tuple[HostileRegistry, Recorder]]:
    """A hostile registry whose bearer realm is the recorder (change ``challenge`` at will)."""
    recorder = Recorder()
    hostile = HostileRegistry()
    runners = []
    try:
        runner, recorder.port = await _serve(recorder.handle)
        runners.append(runner)
        runner, hostile.port = await _serve(hostile.handle)
        runners.append(runner)
        hostile.challenge = f'Bearer realm="http://{recorder.host}/token",service="hostile"'
        yield hostile, recorder
    finally:
        for runner in runners:
            await runner.cleanup()
