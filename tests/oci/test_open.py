"""A client opened from a registry's stored settings: names of a CA file and of credentials,
resolved through the process's secrets."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.errors import ConfigError
from catalog.oci.errors import AuthError, Unauthorized
from catalog.oci.open import client_for
from catalog.oci.options import RegistryOptions
from catalog.oci.secrets import NamedCredentials, Secrets
from tests.harness.registry import RunningRegistry, run_registry


@pytest.fixture(scope="module")
def private_tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("private"), auth="htpasswd", tls=True) as reg:
        yield reg


def _secrets(reg: RunningRegistry) -> Secrets:
    assert reg.ca_file is not None
    robot = NamedCredentials(
        "robot", env=("STORED_USER", "STORED_PASS"), hosts=frozenset({reg.host})
    )
    return Secrets.of([robot], [("private-ca", reg.ca_file)])


async def test_stored_names_of_a_ca_file_and_credentials_are_resolved(
    private_tls_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch, registry_transport: str
) -> None:
    reg = private_tls_registry
    limits = RegistryOptions(transport=registry_transport)  # type: ignore[arg-type]
    assert reg.username
    assert reg.password
    monkeypatch.setenv("STORED_USER", reg.username)
    monkeypatch.setenv("STORED_PASS", reg.password)
    secrets = _secrets(reg)
    async with client_for(
        reg.host, False, "private-ca", "robot", secrets=secrets, max_concurrency=3, limits=limits
    ) as client:
        assert client.base_url == f"https://{reg.host}"
        assert client.options.max_concurrency == 3
        await client.ping()
    monkeypatch.setenv("STORED_PASS", "wrong")
    async with client_for(
        reg.host, False, "private-ca", "robot", secrets=secrets, limits=limits
    ) as client:
        with pytest.raises(Unauthorized):
            await client.ping()


async def test_a_server_without_named_credentials_is_anonymous(
    private_tls_registry: RunningRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry_transport: str,
) -> None:
    """No ambient docker config on a server: the registry refuses an anonymous catalog."""
    reg = private_tls_registry
    limits = RegistryOptions(transport=registry_transport)  # type: ignore[arg-type]
    assert reg.username
    assert reg.password
    assert reg.ca_file
    docker = tmp_path / "docker"
    docker.mkdir()
    auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    server = _secrets(reg)
    async with client_for(
        reg.host, False, "private-ca", None, secrets=server, limits=limits
    ) as client:
        with pytest.raises(AuthError, match="none are configured"):
            await client.ping()
    # The local CLI is the user on the user's machine: docker's config.json is theirs to use.
    local = Secrets.of(ca_files=[("private-ca", reg.ca_file)], local=True)
    async with client_for(
        reg.host, False, "private-ca", None, secrets=local, limits=limits
    ) as client:
        await client.ping()


def test_names_that_cannot_be_resolved_are_config_errors_naming_no_secret(
    private_tls_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = private_tls_registry
    secrets = _secrets(reg)
    monkeypatch.delenv("STORED_PASS", raising=False)
    monkeypatch.setenv("STORED_USER", "alice")
    with pytest.raises(AuthError, match=r"\$STORED_PASS unset"):
        client_for(reg.host, False, None, "robot", secrets=secrets)
    with pytest.raises(ConfigError, match="'gone' are not defined"):
        client_for(reg.host, False, None, "gone", secrets=secrets)
    with pytest.raises(ConfigError, match=r"not defined in secrets\.ca_files"):
        client_for(reg.host, False, "gone", None, secrets=secrets)
    # Credentials bound to their registry's host go nowhere else, whatever the database says.
    with pytest.raises(ConfigError, match=r"not for host 'elsewhere\.test:5000'"):
        client_for("elsewhere.test:5000", False, None, "robot", secrets=secrets)
    # A value stored before names (env:, file:) is no name at all.
    with pytest.raises(ConfigError, match="not defined"):
        client_for(reg.host, False, None, "file:/etc/passwd", secrets=secrets)
    assert "STORED" not in repr(secrets.credentials["robot"])
