"""The fault proxy in front of a real registry: streaming, and each fault taking effect."""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.faultproxy import FaultProxy, registry_error, run_proxy
from tests.harness.images import Blob, build_image
from tests.harness.regclient import RegistryClient
from tests.harness.registry import RunningRegistry, run_registry

BIG = 20 * 1024 * 1024


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path) as running:
        yield running


@pytest.fixture
def proxy(reg: RunningRegistry) -> Iterator[FaultProxy]:
    with run_proxy(reg.url) as running:
        yield running


@pytest.fixture
def blob(reg: RunningRegistry) -> Blob:
    small = Blob.of("application/octet-stream", os.urandom(64 * 1024))
    RegistryClient(reg.url).push_blob("repo", small)
    return small


def _get(proxy: FaultProxy, path: str, method: str = "GET") -> tuple[int, bytes, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection(proxy.host, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read(), time.monotonic() - started
    finally:
        conn.close()


def test_big_blob_streams_both_ways(reg: RunningRegistry, proxy: FaultProxy) -> None:
    big = Blob.of("application/octet-stream", os.urandom(BIG))
    via_proxy = RegistryClient(proxy.url)
    via_proxy.push_blob("big", big)  # the upload Location must point back at the proxy
    assert proxy.count("PUT", r"/v2/big/blobs/uploads/") == 1
    status, data, _ = _get(proxy, f"/v2/big/blobs/{big.digest}")
    assert status == 200
    assert len(data) == BIG
    assert hashlib.sha256(data).hexdigest() == big.digest.removeprefix("sha256:")
    assert RegistryClient(reg.url).get_blob("big", big.digest) == big.data


def test_headers_and_manifests_pass_through(reg: RunningRegistry, proxy: FaultProxy) -> None:
    image = build_image(random.Random(3), layers=1, layer_size=2048)
    RegistryClient(proxy.url).push_image("app", image, "v1")
    got = RegistryClient(proxy.url).get_manifest("app", "v1")
    assert got.body == image.raw
    assert got.headers["docker-content-digest"] == image.digest
    assert got.headers["content-type"] == image.media_type
    # Without an OCI Accept header Distribution hides OCI manifests: the proxy adds none.
    status, _, _ = _get(proxy, "/v2/app/manifests/v1")
    assert status == 404
    status, body, _ = _get(proxy, f"/v2/app/blobs/{image.blobs[1].digest}", "HEAD")
    assert (status, body) == (200, b"")
    # The Host header is preserved, so the registry's absolute URLs name the proxy.
    upload = RegistryClient(proxy.url).request("POST", "/v2/app/blobs/uploads/", body=b"")
    assert upload.status == 202
    assert upload.headers["location"].startswith(f"{proxy.url}/v2/app/blobs/uploads/")


def test_fail(proxy: FaultProxy, blob: Blob) -> None:
    body = registry_error("TOOMANYREQUESTS", "slow down")
    proxy.fail(2, 429, headers={"Retry-After": "1"}, body=body, match=r"/blobs/", method="GET")
    path = f"/v2/repo/blobs/{blob.digest}"
    assert _get(proxy, path, "HEAD")[0] == 200  # other methods are not matched
    conn = http.client.HTTPConnection(proxy.host, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 429
    assert resp.getheader("Retry-After") == "1"
    assert resp.getheader("Content-Type") == "application/json"
    assert resp.read() == body
    conn.close()
    assert _get(proxy, path)[0] == 429
    status, data, _ = _get(proxy, path)
    assert (status, data) == (200, blob.data)
    assert proxy.count("GET", r"/blobs/") == 3
    assert proxy.count("GET", r"/blobs/", action="fail") == 2
    assert proxy.count("HEAD") == 1
    assert proxy.pending() == 0


def test_reset(proxy: FaultProxy, blob: Blob) -> None:
    proxy.reset(1, match=r"/blobs/")
    path = f"/v2/repo/blobs/{blob.digest}"
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        _get(proxy, path)
    assert _get(proxy, path)[1] == blob.data
    assert proxy.count("GET", action="reset") == 1
    assert proxy.requests == [("GET", path), ("GET", path)]


def test_corrupt(proxy: FaultProxy, blob: Blob) -> None:
    proxy.corrupt(1, match=r"/blobs/sha256:")
    path = f"/v2/repo/blobs/{blob.digest}"
    status, data, _ = _get(proxy, path)
    assert status == 200
    assert len(data) == blob.size
    assert data != blob.data
    assert sum(a != b for a, b in zip(data, blob.data, strict=True)) == 1
    assert _get(proxy, path)[1] == blob.data
    assert proxy.count(action="corrupt") == 1


def test_latency(proxy: FaultProxy) -> None:
    assert _get(proxy, "/v2/")[2] < 0.2
    proxy.latency = 0.3
    status, _, elapsed = _get(proxy, "/v2/")
    assert status == 200
    assert elapsed >= 0.3
    proxy.clear()
    assert proxy.latency == 0
    assert proxy.count("GET", r"^/v2/$") == 2


def test_hang(proxy: FaultProxy, blob: Blob) -> None:
    path = f"/v2/repo/blobs/{blob.digest}"
    proxy.hang(1, 0.4, match=r"/blobs/")
    status, data, elapsed = _get(proxy, path)
    assert status == 200
    assert data == blob.data
    assert elapsed >= 0.4
    # A stalled body: headers come at once, the rest after the delay.
    proxy.hang(1, 0.4, match=r"/blobs/", after_headers=True)
    conn = http.client.HTTPConnection(proxy.host, timeout=10)
    started = time.monotonic()
    conn.request("GET", path)
    resp = conn.getresponse()
    assert time.monotonic() - started < 0.3
    assert resp.read() == blob.data
    assert time.monotonic() - started >= 0.4
    conn.close()
    # A client giving up does not keep the proxy busy.
    proxy.hang(1, 30, match=r"/blobs/")
    conn = http.client.HTTPConnection(proxy.host, timeout=0.2)
    conn.request("GET", path)
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()
    assert _get(proxy, path)[1] == blob.data
    assert proxy.count("GET", r"/blobs/", action="hang") == 3


def test_upstream_down_is_502(tmp_path: Path) -> None:
    with run_registry(tmp_path) as reg, run_proxy(reg.url) as proxy:
        reg.stop()
        status, body, _ = _get(proxy, "/v2/")
        assert status == 502
        assert b"upstream failed" in body
        assert proxy.count(action="error") == 1


def test_tls_upstream(tmp_path: Path) -> None:
    with (
        run_registry(tmp_path, tls=True, auth="htpasswd") as reg,
        run_proxy(reg.url, ssl_context=reg.ssl_context()) as proxy,
    ):
        client = RegistryClient(proxy.url, reg.username, reg.password)
        image = build_image(random.Random(4), layers=1, layer_size=1024)
        client.push_image("tls/app", image, "v1")  # Locations come back as http://proxy
        assert client.get_manifest("tls/app", "v1").body == image.raw
