"""A client opened from a registry's stored settings: TLS CA file and credentials reference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from catalog.oci.errors import AuthError, Unauthorized
from catalog.oci.open import client_for
from tests.harness.registry import RunningRegistry, run_registry


@pytest.fixture(scope="module")
def private_tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("private"), auth="htpasswd", tls=True) as reg:
        yield reg


async def test_stored_ca_file_and_credentials_reference_are_used(
    private_tls_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = private_tls_registry
    assert reg.ca_file is not None
    assert reg.username
    assert reg.password
    monkeypatch.setenv("STORED_USER", reg.username)
    monkeypatch.setenv("STORED_PASS", reg.password)
    ca_file = str(reg.ca_file)
    async with client_for(reg.host, False, ca_file, "env:STORED_USER:STORED_PASS", 3) as client:
        assert client.base_url == f"https://{reg.host}"
        assert client.options.max_concurrency == 3
        await client.ping()
    monkeypatch.setenv("STORED_PASS", "wrong")
    async with client_for(reg.host, False, ca_file, "env:STORED_USER:STORED_PASS") as client:
        with pytest.raises(Unauthorized):
            await client.ping()


def test_a_credentials_reference_that_cannot_be_read_is_an_auth_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STORED_MISSING", raising=False)
    with pytest.raises(AuthError, match="STORED_MISSING"):
        client_for("localhost:5000", False, None, "env:STORED_USER:STORED_MISSING")
