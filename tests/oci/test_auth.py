"""Authentication against real registries: htpasswd Basic, the Docker token flow, TLS."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.oci.credentials import Credentials, CredentialStore, DockerConfig
from catalog.oci.errors import AuthError, Denied, RegistryUnavailable, Unauthorized
from tests.conftest import ClientFactory
from tests.harness.images import build_image
from tests.harness.pki import make_ca
from tests.harness.registry import RunningRegistry, run_registry
from tests.pushing import push_built


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("htpasswd"), auth="htpasswd") as reg:
        yield reg


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("token"), auth="token") as reg:
        yield reg


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("tls"), tls=True) as reg:
        yield reg


def creds(reg: RunningRegistry) -> Credentials:
    assert reg.username
    assert reg.password
    return Credentials(reg.username, reg.password)


def realms(reg: RunningRegistry) -> frozenset[str]:
    """The harness's token server: on another port, so listed with the credentials."""
    assert reg.token_server is not None
    return frozenset({f"127.0.0.1:{reg.token_server.port}"})


async def test_basic_auth_with_explicit_credentials(
    htpasswd_registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(htpasswd_registry.host, credentials=creds(htpasswd_registry))
    await client.ping()
    await push_built(client, "basic/app", build_image(rng, layers=1), "v1")
    assert [t async for t in client.tags("basic/app")] == ["v1"]


async def test_basic_auth_without_or_with_wrong_credentials(
    htpasswd_registry: RunningRegistry, make_client: ClientFactory
) -> None:
    with pytest.raises(AuthError, match="username and password"):
        await make_client(htpasswd_registry.host).ping()
    wrong = make_client(htpasswd_registry.host, credentials=Credentials("alice", "wrong"))
    with pytest.raises(Unauthorized):
        await wrong.ping()


async def test_credentials_from_docker_config_auths(
    htpasswd_registry: RunningRegistry, make_client: ClientFactory, tmp_path: Path
) -> None:
    c = creds(htpasswd_registry)
    config = tmp_path / "config.json"
    encoded = base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {htpasswd_registry.host: {"auth": encoded}}}))
    store = CredentialStore(docker_config=DockerConfig(config))
    await make_client(htpasswd_registry.host, store=store).ping()


async def test_credentials_from_a_credential_helper(
    htpasswd_registry: RunningRegistry,
    make_client: ClientFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = creds(htpasswd_registry)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-xrtest"
    log = tmp_path / "asked"
    # A real helper program, run the way docker runs one: `get`, server on stdin, JSON out.
    helper.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$1 $server" >> {log}\n'
        f'echo \'{{"ServerURL":"\'$server\'",'
        f'"Username":"{c.username}","Secret":"{c.password}"}}\'\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {htpasswd_registry.host: "xrtest"}}))
    store = CredentialStore(docker_config=DockerConfig(config))
    await make_client(htpasswd_registry.host, store=store).ping()
    assert log.read_text().split() == ["get", htpasswd_registry.host]

    config.write_text(json.dumps({"credsStore": "missing-helper"}))
    with pytest.raises(AuthError, match="docker-credential-missing-helper"):
        CredentialStore(docker_config=DockerConfig(config)).lookup("other.example")


async def test_token_flow_caches_one_token_per_scope(
    token_registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    server = token_registry.token_server
    assert server is not None
    client = make_client(
        token_registry.host, credentials=creds(token_registry), token_realms=realms(token_registry)
    )
    await push_built(client, "tok/app", build_image(rng, layers=2), "v1")
    server.clear()
    await asyncio.gather(*(client.get_manifest("tok/app", "v1") for _ in range(20)))
    await asyncio.gather(*(client.head_manifest("tok/app", "v1") for _ in range(20)))
    assert server.count(scope=r"^repository:tok/app:pull$") == 1
    assert [r async for r in client.catalog()] == ["tok/app"]


async def test_token_is_refreshed_when_it_expires(
    token_registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    server = token_registry.token_server
    assert server is not None
    client = make_client(
        token_registry.host, credentials=creds(token_registry), token_realms=realms(token_registry)
    )
    await push_built(client, "tok/expiry", build_image(rng, layers=1), "v1")
    server.expires_in = 7  # the client refreshes 5 s early: fresh for 2 s
    try:
        server.clear()
        await client.get_manifest("tok/expiry", "v1")
        await client.get_manifest("tok/expiry", "v1")
        assert server.count(scope="tok/expiry:pull$") == 1
        await asyncio.sleep(2.5)
        await client.get_manifest("tok/expiry", "v1")
        assert server.count(scope="tok/expiry:pull$") == 2
    finally:
        server.expires_in = 300


async def test_anonymous_token_pulls_public_but_cannot_push(
    token_registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    owner = make_client(
        token_registry.host, credentials=creds(token_registry), token_realms=realms(token_registry)
    )
    image = build_image(rng, layers=1)
    await push_built(owner, "public/app", image, "v1")
    await push_built(owner, "private/app", image, "v1")
    anonymous = make_client(token_registry.host)
    assert (await anonymous.get_manifest("public/app", "v1")).raw == image.raw
    with pytest.raises((Unauthorized, Denied)):
        await anonymous.get_manifest("private/app", "v1")
    with pytest.raises((Unauthorized, Denied)):
        await push_built(anonymous, "public/app", image, "v2")


async def test_token_server_refusing_credentials_is_an_auth_error(
    token_registry: RunningRegistry, make_client: ClientFactory
) -> None:
    client = make_client(
        token_registry.host,
        credentials=Credentials("alice", "wrong"),
        token_realms=realms(token_registry),
    )
    with pytest.raises(AuthError, match="refused the credentials"):
        await client.get_manifest("tok/app", "v1")


async def test_tls_with_custom_ca(
    tls_registry: RunningRegistry, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(tls_registry.host, ca_file=tls_registry.ca_file)
    assert client.base_url.startswith("https://")
    await push_built(client, "tls/app", build_image(rng, layers=1), "v1")
    assert [t async for t in client.tags("tls/app")] == ["v1"]


async def test_tls_without_the_ca_fails_at_once_with_a_hint(
    tls_registry: RunningRegistry, make_client: ClientFactory, tmp_path: Path
) -> None:
    # Loopback defaults to plain HTTP; ask for HTTPS by naming a CA that did not sign it.
    other_ca = make_ca(tmp_path, "some other CA")
    client = make_client(tls_registry.host, ca_file=other_ca.cert_file)
    with pytest.raises(RegistryUnavailable, match="certificate"):
        await client.ping()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost:5000", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.0.0.2:80", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("[::ffff:127.0.0.1]:5000", True),  # where a dual-stack socket connects
        ("[::ffff:10.0.0.1]:5000", False),
        ("localhost.example:5000", False),
        ("ip6-localhost:5000", False),  # a name: never resolved to decide
        ("0.0.0.0:5000", False),
        ("10.0.0.1:5000", False),
        ("registry.example", False),
    ],
)
def test_which_registry_hosts_are_this_machine(host: str, loopback: bool) -> None:
    from catalog.hostport import is_loopback_host

    assert is_loopback_host(host) is loopback


def test_plain_http_only_for_loopback_or_when_insecure() -> None:
    from catalog.oci.client import RegistryClient, RegistryOptions

    assert RegistryClient("localhost:5000").base_url == "http://localhost:5000"
    assert RegistryClient("127.0.0.2:80").base_url == "http://127.0.0.2:80"
    assert RegistryClient("[::1]:5000").base_url == "http://[::1]:5000"
    assert RegistryClient("registry.example:5000").base_url == "https://registry.example:5000"
    insecure = RegistryOptions(insecure=True)
    assert RegistryClient("10.0.0.1:5000", insecure).base_url == "http://10.0.0.1:5000"
