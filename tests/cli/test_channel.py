"""The CLI's channel (catalog/cli/channel.py) against real servers: TLS, mTLS, bearer tokens,
and a token that must never cross a network in plain text."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
import pytest

from catalog.app.tls_config import TlsSettings
from catalog.cli.channel import ClientSecurity, open_aio_channel, open_channel
from catalog.errors import ConfigError
from tests.api.peer import Pki, get_registry, make_pki, peer, serving
from tests.harness.pki import make_server_cert
from tests.harness.ports import lan_address

TOKEN = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "XREGISTRY_CA_FILE",
        "XREGISTRY_CERT",
        "XREGISTRY_KEY",
        "XREGISTRY_TOKEN",
        "XREGISTRY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


async def call(server: str, security: ClientSecurity | None = None) -> tuple[str, str]:
    """(client certificate name the server saw, authorization header it got)."""
    async with open_aio_channel(server, security) as channel:
        registry = await get_registry(channel)
    return registry.host, registry.credentials_ref


async def test_mtls_and_a_token_from_the_environment(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XREGISTRY_CA_FILE", str(pki.ca.cert_file))
    monkeypatch.setenv("XREGISTRY_CERT", str(pki.client.cert_file))
    monkeypatch.setenv("XREGISTRY_KEY", str(pki.client.key_file))
    monkeypatch.setenv("XREGISTRY_TOKEN", f"  {TOKEN}\n")
    async with serving(peer(), pki.settings(mtls=True)) as server:
        address = f"127.0.0.1:{server.port}"
        assert await call(address) == ("ci-runner", f"Bearer {TOKEN}")

        # The blocking channel is the same channel.
        def blocking() -> str:
            from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc

            with open_channel(address) as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                request = catalog_pb2.GetRegistryRequest(name="registries/x")
                return stub.GetRegistry(request, timeout=5).registry.host

        assert await asyncio.to_thread(blocking) == "ci-runner"

        monkeypatch.delenv("XREGISTRY_CERT")
        monkeypatch.delenv("XREGISTRY_KEY")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(address)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_token_file_is_read_at_each_channel(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A projected service-account token rotates in its file; the next command sends the new one."""
    token_file = tmp_path / "token"
    monkeypatch.setenv("XREGISTRY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("XREGISTRY_CA_FILE", str(pki.ca.cert_file))
    async with serving(peer(), pki.settings()) as server:
        for token in ("first.token", "second.token"):
            token_file.write_text(token + "\n")
            # localhost: the server's certificate names it too.
            assert await call(f"localhost:{server.port}") == ("", f"Bearer {token}")


async def test_a_token_reaches_a_plain_text_server_on_loopback_only(tmp_path: Path) -> None:
    """Development: a loopback server without TLS gets the token (the connection never leaves
    the machine). A plain-text server elsewhere never does: the client insists on TLS."""
    local = peer()
    async with serving(local, None) as server:
        for host in ("127.0.0.1", "localhost"):
            answer = await call(f"{host}:{server.port}", ClientSecurity(token=TOKEN))
            assert answer == ("", f"Bearer {TOKEN}")
    socket_path = f"unix:{tmp_path / 'xregistry.sock'}"
    async with serving(peer(), None, socket_path):
        assert await call(socket_path, ClientSecurity(token=TOKEN)) == ("", f"Bearer {TOKEN}")
    lan = lan_address()
    if lan is None:
        pytest.skip("this machine has no address besides loopback")
    remote = peer()
    async with serving(remote, None, f"{lan}:0") as server:
        # Without a token the plain-text call goes through: the server is really there.
        assert await call(f"{lan}:{server.port}", ClientSecurity()) == ("", "")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(f"{lan}:{server.port}", ClientSecurity(token=TOKEN))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert remote.authorizations == [""]


def test_bad_tokens_and_half_pairs_are_refused_without_echoing_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-value"
    monkeypatch.setenv("XREGISTRY_TOKEN", f"{secret}\r\nx-injected: 1")
    with pytest.raises(ConfigError, match=r"\$XREGISTRY_TOKEN has characters") as err:
        ClientSecurity.from_cli()
    assert secret not in str(err.value)
    monkeypatch.setenv("XREGISTRY_TOKEN", secret)
    assert secret not in repr(ClientSecurity.from_cli())
    token_file = tmp_path / "token"
    token_file.write_text(secret)
    monkeypatch.setenv("XREGISTRY_TOKEN_FILE", str(token_file))
    with pytest.raises(ConfigError, match="not both"):
        ClientSecurity.from_cli()
    monkeypatch.delenv("XREGISTRY_TOKEN")
    token_file.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        ClientSecurity.from_cli()
    monkeypatch.delenv("XREGISTRY_TOKEN_FILE")
    monkeypatch.setenv("XREGISTRY_CERT", str(tmp_path / "client.crt"))
    with pytest.raises(ConfigError, match="--cert and --key go together"):
        ClientSecurity.from_cli()


async def test_the_server_name_is_checked_not_only_the_chain(pki: Pki, tmp_path: Path) -> None:
    """A certificate from the right CA for another name does not pass for this server."""
    elsewhere = make_server_cert(tmp_path / "elsewhere", pki.ca, hosts=("other.example",))
    settings = TlsSettings(cert_file=elsewhere.cert_file, key_file=elsewhere.key_file)
    async with serving(peer(), settings) as server:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(f"127.0.0.1:{server.port}", ClientSecurity(ca_file=pki.ca.cert_file))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
