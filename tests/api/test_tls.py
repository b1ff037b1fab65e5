"""TLS and mTLS on the gRPC server with certificates made now, real channels, rotation on disk
while serving, and one server per port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from catalog.api.server import ApiServer, CannotListen, build_server, catalog_service
from catalog.api.tls import ServerCertificates
from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.app.tls_config import MAX_CREDENTIAL_FILE, TlsSettings
from catalog.errors import ConfigError
from tests.api.peer import Pki, get_registry, make_pki, peer, serving
from tests.harness.pki import CertKey, make_client_cert, make_server_cert


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def tls_server(settings: TlsSettings) -> contextlib.AbstractAsyncContextManager[ApiServer]:
    return serving(peer(), settings)


async def ask(
    port: int, *, ca: CertKey | None, client: CertKey | None = None, token: str | None = None
) -> catalog_pb2.Registry:
    """One call on a fresh channel (a new connection, so a new handshake)."""
    if ca is None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    else:
        credentials = grpc.ssl_channel_credentials(
            ca.cert_pem,
            client.key_file.read_bytes() if client else None,
            client.cert_pem if client else None,
        )
        if token is not None:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.access_token_call_credentials(token)
            )
        channel = grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials)
    async with channel:
        return await get_registry(channel)


async def refused(port: int, **how: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ask(port, **how)
    return err.value.code()


async def test_tls_serves_and_refuses_plain_text_and_strangers(pki: Pki) -> None:
    async with tls_server(pki.settings()) as server:
        answer = await ask(server.port, ca=pki.ca, token="t0ken")
        assert answer.name == "registries/x"
        assert answer.credentials_ref == "Bearer t0ken"  # call credentials travel over TLS
        assert answer.host == ""  # no client certificate was asked for
        assert await refused(server.port, ca=None) == grpc.StatusCode.UNAVAILABLE
        # A client that trusts another CA does not accept this server.
        assert await refused(server.port, ca=pki.other_ca) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_requires_a_client_certificate_from_the_client_ca(pki: Pki) -> None:
    async with tls_server(pki.settings(mtls=True)) as server:
        answer = await ask(server.port, ca=pki.ca, client=pki.client)
        assert answer.host == "ci-runner"  # the handler sees who connected
        assert await refused(server.port, ca=pki.ca) == grpc.StatusCode.UNAVAILABLE
        stranger = make_client_cert(pki.directory / "stranger", pki.other_ca, "stranger")
        assert await refused(server.port, ca=pki.ca, client=stranger) == grpc.StatusCode.UNAVAILABLE
        assert await refused(server.port, ca=None) == grpc.StatusCode.UNAVAILABLE


def replace(path: Path, data: bytes) -> None:
    """Write ``data`` as a new file moved over ``path`` (a new inode, like most tools)."""
    fresh = path.with_suffix(".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


async def test_rotated_files_serve_new_connections_without_a_restart(pki: Pki) -> None:
    async with tls_server(pki.settings()) as server:
        kept = grpc.aio.secure_channel(
            f"127.0.0.1:{server.port}", grpc.ssl_channel_credentials(pki.ca.cert_pem)
        )
        stub = catalog_pb2_grpc.CatalogServiceStub(kept)
        await stub.GetRegistry(catalog_pb2.GetRegistryRequest(name="registries/a"), timeout=5)

        rotated = make_server_cert(pki.directory / "rotated", pki.other_ca)
        replace(pki.server.cert_file, rotated.cert_pem)
        replace(pki.server.key_file, rotated.key_file.read_bytes())

        assert (await ask(server.port, ca=pki.other_ca)).name == "registries/x"
        assert await refused(server.port, ca=pki.ca) == grpc.StatusCode.UNAVAILABLE
        # The connection opened before the rotation goes on with what it negotiated.
        await stub.GetRegistry(catalog_pb2.GetRegistryRequest(name="registries/b"), timeout=5)
        await kept.close()


async def test_a_kubernetes_style_symlink_swap_is_picked_up(pki: Pki) -> None:
    """Secret volumes point tls.crt at ..data/tls.crt and swap the ..data link at once."""
    volume = pki.directory / "volume"
    first = volume / "..2026_01"
    first.mkdir(parents=True)
    shutil.copy(pki.server.cert_file, first / "tls.crt")
    shutil.copy(pki.server.key_file, first / "tls.key")
    (volume / "..data").symlink_to(first.name)
    for name in ("tls.crt", "tls.key"):
        (volume / name).symlink_to(Path("..data") / name)
    settings = TlsSettings(cert_file=volume / "tls.crt", key_file=volume / "tls.key")
    async with tls_server(settings) as server:
        assert (await ask(server.port, ca=pki.ca)).name == "registries/x"
        second = volume / "..2026_02"
        rotated = make_server_cert(second, pki.other_ca, stem="tls")
        assert rotated.cert_file == second / "tls.crt"
        (volume / "..data_tmp").symlink_to(second.name)
        os.replace(volume / "..data_tmp", volume / "..data")
        assert (await ask(server.port, ca=pki.other_ca)).name == "registries/x"
        assert await refused(server.port, ca=pki.ca) == grpc.StatusCode.UNAVAILABLE


async def test_a_rotated_client_ca_decides_who_may_connect(pki: Pki) -> None:
    async with tls_server(pki.settings(mtls=True)) as server:
        newcomer = make_client_cert(pki.directory / "newcomer", pki.other_ca, "newcomer")
        assert await refused(server.port, ca=pki.ca, client=newcomer) == grpc.StatusCode.UNAVAILABLE
        replace(pki.ca.cert_file, pki.other_ca.cert_pem)
        assert (await ask(server.port, ca=pki.ca, client=newcomer)).host == "newcomer"
        assert await refused(server.port, ca=pki.ca, client=pki.client) == (
            grpc.StatusCode.UNAVAILABLE
        )


async def test_a_broken_rotation_keeps_the_working_pair(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """Half-written, garbage, oversized, missing or FIFO files never reach a handshake: the
    server keeps answering with the pair it has until the files on disk agree again."""
    rotated = make_server_cert(pki.directory / "rotated", pki.other_ca)
    cert, key = pki.server.cert_file, pki.server.key_file
    steps: list[tuple[str, Callable[[], None]]] = [
        ("half", lambda: replace(cert, rotated.cert_pem)),  # the certificate before its key
        ("garbage", lambda: replace(key, b"-----BEGIN PRIVATE KEY-----\nnope\n")),
        ("huge", lambda: replace(key, b"A" * (MAX_CREDENTIAL_FILE + 1))),
        ("missing", key.unlink),
        ("fifo", lambda: os.mkfifo(key)),  # a read would never end
    ]
    caplog.set_level(logging.INFO, "xregistry.tls")
    async with tls_server(pki.settings()) as server:
        for step, damage in steps:
            caplog.clear()
            damage()
            # Still the first certificate, though its file now holds another one.
            assert (await ask(server.port, ca=pki.ca)).name == "registries/x", step
            assert "keeping the certificate in use" in caplog.text, step
        key.unlink()
        replace(key, rotated.key_file.read_bytes())
        assert (await ask(server.port, ca=pki.other_ca)).name == "registries/x"
        assert "TLS certificate reloaded" in caplog.text
        assert await refused(server.port, ca=pki.ca) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "tls.cert_file"),
        ("mismatch", "is not the key of the certificate"),
        ("encrypted", "not an unencrypted PEM key"),
        ("not-pem", "no PEM certificate"),
        ("fifo", "not a regular file"),
    ],
)
def test_unusable_files_are_refused_at_start(pki: Pki, damage: str, message: str) -> None:
    from cryptography.hazmat.primitives import serialization

    cert, key = pki.server.cert_file, pki.server.key_file
    if damage == "missing":
        cert.unlink()
    elif damage == "mismatch":
        key.write_bytes(pki.client.key_file.read_bytes())
    elif damage == "encrypted":
        key.write_bytes(
            pki.server.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            )
        )
    elif damage == "not-pem":
        cert.write_bytes(pki.server.cert_der)
    else:
        cert.unlink()
        os.mkfifo(cert)
    with pytest.raises(ConfigError, match=message):
        ServerCertificates(pki.settings())


def test_client_ca_and_require_client_cert_come_together(pki: Pki) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs require_client_cert: true"):
        TlsSettings(cert_file=Path("c"), key_file=Path("k"), client_ca_file=Path("ca"))
    with pytest.raises(ValidationError, match="needs client_ca_file"):
        TlsSettings(cert_file=Path("c"), key_file=Path("k"), require_client_cert=True)


async def test_a_second_server_on_a_taken_port_fails_at_start(pki: Pki) -> None:
    first = build_server("127.0.0.1:0", [catalog_service(peer())])
    await first.start()
    try:
        address = f"127.0.0.1:{first.port}"
        with pytest.raises(CannotListen, match="address is in use"):
            build_server(address, [catalog_service(peer())])
        with pytest.raises(CannotListen, match="address is in use"):
            build_server(
                address,
                [catalog_service(peer())],
                credentials=ServerCertificates(pki.settings()).credentials(),
            )
        # grpc's default is SO_REUSEPORT on: a server with it would share our port if ours had
        # it too. Ours does not, so even such a server cannot bind beside it.
        sharing = grpc.aio.server()
        with pytest.raises(RuntimeError, match="Failed to bind"):
            sharing.add_insecure_port(address)
        # And the first server still answers alone.
        async with grpc.aio.insecure_channel(address) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            await stub.GetRegistry(catalog_pb2.GetRegistryRequest(name="registries/x"), timeout=5)
    finally:
        await first.stop(grace=None)


async def test_handshakes_racing_a_rotation_all_succeed(pki: Pki) -> None:
    """Forty new connections at once while the pair is replaced underneath: each meets the old
    pair or the new one, never a mix and never an error (clients trust both CAs)."""
    both = pki.directory / "both.pem"
    both.write_bytes(pki.ca.cert_pem + pki.other_ca.cert_pem)
    rotated = make_server_cert(pki.directory / "rotated", pki.other_ca)

    async def connect() -> str:
        credentials = grpc.ssl_channel_credentials(both.read_bytes())
        async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", credentials) as channel:
            return (await get_registry(channel)).name

    async def rotate() -> None:
        await asyncio.sleep(0.01)
        replace(pki.server.key_file, rotated.key_file.read_bytes())  # the key first: a mismatch
        await asyncio.sleep(0.01)
        replace(pki.server.cert_file, rotated.cert_pem)

    async with tls_server(pki.settings()) as server:
        answers = await asyncio.gather(*(connect() for _ in range(40)), rotate())
        assert answers[:40] == ["registries/x"] * 40
        assert await refused(server.port, ca=pki.ca) == grpc.StatusCode.UNAVAILABLE
