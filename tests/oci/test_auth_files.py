"""The login files of podman, skopeo and buildah (containers-auth.json(5)) beside docker's, in
their order; read by the local CLI only."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.oci.credentials import AuthFiles, Credentials, CredentialStore, ambient_auth_files
from catalog.oci.errors import AuthError, Unauthorized
from catalog.oci.secrets import Secrets
from tests.conftest import ClientFactory
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry, run_registry
from tests.pushing import push_built

HOST = "registry.example:5000"


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("htpasswd"), auth="htpasswd") as reg:
        yield reg


def auth_json(path: Path, entries: dict[str, dict[str, str]]) -> Path:
    """A file as `podman login` writes it: {"auths": {host: {"auth": base64(USER:PASSWORD)}}}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": entries}, indent="\t"))
    return path


def basic(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's environment with every login file location under tmp_path."""
    for var in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path


def test_the_order_is_containers_auth_json_5(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = home / "run" / "containers" / "auth.json"
    config = home / "home" / ".config" / "containers" / "auth.json"
    docker = home / "home" / ".docker" / "config.json"
    assert ambient_auth_files() == [runtime, config, docker]
    auth_json(docker, {HOST: basic("docker", "d"), "only-docker.example": basic("od", "x")})
    auth_json(config, {HOST: basic("config", "c")})
    auth_json(runtime, {HOST: basic("podman", "p")})
    assert AuthFiles().lookup(HOST) == Credentials("podman", "p")
    # A host missing from the first file is looked up in the next ones.
    assert AuthFiles().lookup("only-docker.example") == Credentials("od", "x")
    assert AuthFiles().lookup("nowhere.example") is None

    # $REGISTRY_AUTH_FILE replaces the primary file (as --authfile does), the others still follow.
    override = auth_json(home / "elsewhere.json", {HOST: basic("override", "o")})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(override))
    assert ambient_auth_files() == [override, config, docker]
    assert AuthFiles().lookup(HOST) == Credentials("override", "o")

    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / "dc"))
    assert ambient_auth_files() == [
        home / "xdg" / "containers" / "auth.json",
        home / "dc" / "config.json",
    ]
    assert AuthFiles().lookup(HOST) is None  # none of those files exists


def test_identity_tokens_in_the_containers_format(home: Path) -> None:
    # containers-auth.json(5): "identitytoken" beside an "auth" of "USER:" (no password).
    entry = {"auth": base64.b64encode(b"alice:").decode(), "identitytoken": "rt-secret-1"}
    auth_json(home / "run" / "containers" / "auth.json", {HOST: entry})
    found = AuthFiles().lookup(HOST)
    assert found == Credentials("alice", "", identity_token="rt-secret-1")
    assert "rt-secret-1" not in repr(found)


def test_a_server_reads_no_login_file(home: Path) -> None:
    auth_json(home / "run" / "containers" / "auth.json", {HOST: basic("podman", "p")})
    assert Secrets(local=False).credential_store().lookup(HOST) is None
    assert Secrets(local=True).credential_store().lookup(HOST) == Credentials("podman", "p")


async def test_a_podman_login_reaches_a_real_registry(
    htpasswd_registry: RunningRegistry,
    make_client: ClientFactory,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    rng: random.Random,
) -> None:
    assert htpasswd_registry.username
    assert htpasswd_registry.password
    login = basic(htpasswd_registry.username, htpasswd_registry.password)
    monkeypatch.setenv(
        "REGISTRY_AUTH_FILE",
        str(auth_json(home / "podman-auth.json", {htpasswd_registry.host: login})),
    )
    client = make_client(htpasswd_registry.host, store=CredentialStore())
    await push_built(client, "podman/app", build_image(rng, layers=1), "v1")
    assert [t async for t in client.tags("podman/app")] == ["v1"]

    # The same registry with the wrong password in the primary file: refused, no fallback.
    wrong = basic(htpasswd_registry.username, "wrong")
    auth_json(home / "podman-auth.json", {htpasswd_registry.host: wrong})
    with pytest.raises(Unauthorized):
        await make_client(htpasswd_registry.host, store=CredentialStore()).ping()


@pytest.mark.parametrize(
    "content",
    [
        '{"auths": ["x"]}',
        '{"credHelpers": "x"}',
        json.dumps({"auths": {HOST: {"auth": "***"}}}),
        json.dumps({"auths": {HOST: {"identitytoken": 7}}}),
        "[1]",
        "not json",
    ],
)
def test_a_malformed_login_file_is_one_line_naming_the_file(home: Path, content: str) -> None:
    path = home / "run" / "containers" / "auth.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(AuthError) as caught:
        AuthFiles().lookup(HOST)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    assert "***" not in message  # what was in the file is not quoted
