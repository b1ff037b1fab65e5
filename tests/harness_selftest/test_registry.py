"""The registry runner starts the real Distribution binary in each variant."""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path
from typing import Any

import pytest

from tests.harness.images import Blob
from tests.harness.regclient import RegistryClient
from tests.harness.registry import RegistryStartError, run_registry


def _status(url: str, context: ssl.SSLContext | None = None) -> int:
    host = url.split("://", 1)[1]
    conn: http.client.HTTPConnection
    if url.startswith("https"):
        conn = http.client.HTTPSConnection(host, timeout=5, context=context)
    else:
        conn = http.client.HTTPConnection(host, timeout=5)
    try:
        conn.request("GET", "/v2/")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("auth", ["none", "htpasswd", "token"])
def test_variants_answer_v2(tmp_path: Path, auth: str, tls: bool) -> None:
    with run_registry(tmp_path, auth=auth, tls=tls) as reg:  # type: ignore[arg-type]
        assert reg.url == f"{'https' if tls else 'http'}://{reg.host}"
        assert reg.storage.is_dir()
        assert (reg.ca_file is not None) == tls
        assert (reg.token_server is not None) == (auth == "token")
        anonymous = _status(reg.url, reg.ssl_context())
        assert anonymous == (200 if auth == "none" else 401)
        client = RegistryClient(reg.url, reg.username, reg.password, reg.ca_file)
        assert client.request("GET", "/v2/").status == 200
        if auth != "none":
            assert reg.username == "alice"
            assert reg.password
    assert reg.process.poll() is not None


def test_tls_needs_the_ca(tmp_path: Path) -> None:
    with run_registry(tmp_path, tls=True) as reg:
        with pytest.raises(ssl.SSLCertVerificationError):
            _status(reg.url, ssl.create_default_context())
        assert _status(reg.url, reg.ssl_context()) == 200
        # The certificate also names localhost.
        assert _status(reg.url.replace("127.0.0.1", "localhost"), reg.ssl_context()) == 200


def test_wrong_password_is_refused(tmp_path: Path) -> None:
    with run_registry(tmp_path, auth="htpasswd") as reg:
        client = RegistryClient(reg.url, reg.username, "not-the-password")
        assert client.request("GET", "/v2/").status == 401


def test_extra_deep_merges(tmp_path: Path) -> None:
    with run_registry(tmp_path, extra={"catalog": {"maxentries": 2}}) as reg:
        client = RegistryClient(reg.url)
        assert client.request("GET", "/v2/_catalog?n=2").status == 200
        too_many = client.request("GET", "/v2/_catalog?n=3")
        assert too_many.status == 400
        assert b"PAGINATION_NUMBER_INVALID" in too_many.body
        assert "maxentries: 2" in reg.config_file.read_text()
        assert "rootdirectory" in reg.config_file.read_text()  # the rest of storage survived


def test_two_registries_share_a_workdir(tmp_path: Path) -> None:
    with run_registry(tmp_path) as one, run_registry(tmp_path) as two:
        assert one.host != two.host
        assert one.storage != two.storage


def test_startup_failure_reports_the_log(tmp_path: Path) -> None:
    bad: dict[str, Any] = {"storage": {"filesystem": None, "no-such-driver": {}}}
    with (
        pytest.raises(RegistryStartError, match="no-such-driver"),
        run_registry(tmp_path, extra=bad),
    ):
        pass


def test_stop_ends_the_process(tmp_path: Path) -> None:
    with run_registry(tmp_path) as reg:
        reg.stop()
        assert reg.process.poll() is not None
        with pytest.raises(ConnectionRefusedError):
            _status(reg.url)
        reg.stop()  # idempotent


def test_restart_keeps_port_and_storage(tmp_path: Path) -> None:
    with run_registry(tmp_path, auth="htpasswd") as reg:
        client = RegistryClient(reg.url, reg.username, reg.password)
        blob = Blob.of("application/octet-stream", b"kept across restarts")
        client.push_blob("keep", blob)
        first = reg.process
        reg.restart()
        assert reg.process is not first
        assert first.poll() is not None
        assert client.get_blob("keep", blob.digest) == blob.data
