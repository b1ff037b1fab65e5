"""HTTP(S) listeners beside the gRPC server (admission webhooks, metrics, registry events).

    listener = HttpListener("admission", "0.0.0.0:8443", app, tls=settings.tls)
    await listener.start()          # bound now: CannotListen when the port is taken
    ...
    await listener.stop()

Each listener has its own address and, optionally, its own `tls` section, re-read from disk
when the files change (:meth:`catalog.api.tls.ServerCertificates.ssl_context`), like the
gRPC server's. Request bodies are capped (``client_max_size``) and handlers are the caller's
to bound further.
"""

from __future__ import annotations

import logging

from aiohttp import web

from catalog.api.server import CannotListen, ensure_free
from catalog.api.tls import ServerCertificates
from catalog.app.tls_config import TlsSettings, split_address

log = logging.getLogger("xregistry.http")

MAX_BODY = 4 << 20
"""Bytes of one request body unless a listener says otherwise (aiohttp answers 413 above)."""


class HttpListener:
    """One aiohttp application on one address, plain or TLS (rotated on change)."""

    def __init__(
        self,
        name: str,
        listen: str,
        app: web.Application,
        *,
        tls: TlsSettings | None = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.listen = listen
        host, port = split_address(listen)
        if port is None:
            raise CannotListen(f"{name}: listen address {listen!r} has no port")
        self._host = host or None
        self._port = port
        # Checked now, so a bad certificate is refused at start like the gRPC server's.
        self._ssl = None if tls is None else ServerCertificates(tls).ssl_context()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
        self._site: web.TCPSite | None = None
        self.port = 0

    @property
    def scheme(self) -> str:
        return "http" if self._ssl is None else "https"

    async def start(self) -> None:
        ensure_free(self.listen)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise CannotListen(
                f"{self.name}: cannot listen on {self.listen}: {exc.strerror}"
            ) from None
        self._site = site
        server = site._server  # the bound socket tells the port picked for ":0"
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("%s listening on %s://%s:%d", self.name, self.scheme, self._host or "*", self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
        self._site = None
