"""The HTTP(S) listeners beside gRPC: plain and TLS with real certificates made now, rotation
on disk while serving, a taken port refused at start."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiohttp import web

from catalog.api.http import HttpListener
from catalog.api.server import CannotListen
from tests.api.peer import Pki, make_pki
from tests.api.test_tls import replace
from tests.harness.pki import CertKey, make_server_cert


def hello_app() -> web.Application:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    return app


async def fetch(port: int, ca: CertKey | None = None) -> tuple[str, bytes | None]:
    """The body and, over TLS, the server certificate (DER) of one request on a fresh
    connection to ``127.0.0.1:port``."""
    context = None if ca is None else ssl.create_default_context(cadata=ca.cert_pem.decode())
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        writer.write(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    return answer.partition(b"\r\n\r\n")[2].decode(), der


async def test_plain_listener_serves_and_stops() -> None:
    listener = HttpListener("test", "127.0.0.1:0", hello_app())
    await listener.start()
    try:
        assert listener.port > 0
        assert (await fetch(listener.port))[0] == "hello"
    finally:
        await listener.stop()
    with pytest.raises(ConnectionRefusedError):
        await fetch(listener.port)


async def test_tls_listener_rotates_its_certificate_on_disk(tmp_path: Path) -> None:
    pki: Pki = make_pki(tmp_path)
    listener = HttpListener("test", "127.0.0.1:0", hello_app(), tls=pki.settings())
    await listener.start()
    try:
        body, der = await fetch(listener.port, pki.ca)
        assert body == "hello"
        assert der == pki.server.cert_der
        with pytest.raises(ssl.SSLCertVerificationError):
            await fetch(listener.port, pki.other_ca)

        rotated = make_server_cert(tmp_path / "rotated", pki.other_ca)
        replace(pki.server.key_file, rotated.key_file.read_bytes())
        # The key alone does not match the certificate: the working pair stays in use.
        assert (await fetch(listener.port, pki.ca))[1] == pki.server.cert_der
        replace(pki.server.cert_file, rotated.cert_pem)
        body, der = await fetch(listener.port, pki.other_ca)
        assert body == "hello"
        assert der == rotated.cert_der
    finally:
        await listener.stop()


async def test_a_taken_port_is_refused_at_start() -> None:
    first = HttpListener("first", "127.0.0.1:0", hello_app())
    await first.start()
    try:
        second = HttpListener("second", f"127.0.0.1:{first.port}", hello_app())
        with pytest.raises(CannotListen, match="in use"):
            await second.start()
    finally:
        await first.stop()
