"""The token server against the real registry: grants, refusals, expiry and key headers."""

from __future__ import annotations

import base64
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.harness.images import build_image
from tests.harness.regclient import RegistryClient
from tests.harness.registry import RunningRegistry, run_registry
from tests.harness.tokenserver import Access, TokenServer, parse_scope, run_token_server


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path, auth="token") as running:
        yield running


def _token(
    ts: TokenServer, scopes: list[str], user: str | None = None, password: str | None = None
) -> tuple[int, dict[str, Any]]:
    query = urllib.parse.urlencode([("service", ts.service)] + [("scope", s) for s in scopes])
    request = urllib.request.Request(f"{ts.realm}?{query}")
    if user is not None:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _bearer(reg: RunningRegistry, method: str, path: str, token: str) -> int:
    client = RegistryClient(reg.url)
    return client._send(method, reg.url + path, b"", {"Authorization": f"Bearer {token}"}).status


def test_alice_pushes_with_a_token(reg: RunningRegistry) -> None:
    ts = reg.token_server
    assert ts is not None
    client = RegistryClient(reg.url, reg.username, reg.password)
    image = build_image(random.Random(1), layers=1, layer_size=1024)
    client.push_image("team/app", image, "v1")
    got = client.get_manifest("team/app", "v1")
    assert got.body == image.raw
    assert ts.count(user="alice", scope=r"^repository:team/app:.*push") >= 1
    catalog = client.request("GET", "/v2/_catalog")
    assert catalog.status == 200
    assert catalog.json() == {"repositories": ["team/app"]}
    assert ts.count(scope=r"^registry:catalog:\*$") == 1


def test_token_response_shape(reg: RunningRegistry) -> None:
    ts = reg.token_server
    assert ts is not None
    ts.expires_in = 7
    status, body = _token(
        ts, ["repository:a/b:pull,push", "registry:catalog:*"], "alice", reg.password
    )
    assert status == 200
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 7
    claims = _claims(body["token"])
    assert claims["exp"] - claims["iat"] == 7
    assert claims["aud"] == ts.service
    assert claims["iss"] == ts.issuer
    assert claims["sub"] == "alice"
    assert claims["access"] == [
        {"type": "repository", "name": "a/b", "actions": ["pull", "push"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256"
    assert len(header["x5c"]) == 1
    # The token verifies with the certificate the registry trusts.
    assert (
        jwt.decode(
            body["token"], ts.signer.key.public_key(), algorithms=["ES256"], audience=ts.service
        )["sub"]
        == "alice"
    )
    last = ts.requests[-1]
    assert last.user == "alice"
    assert last.status == 200
    assert last.scopes == ("repository:a/b:pull,push", "registry:catalog:*")


def test_anonymous_gets_public_pull_only(reg: RunningRegistry) -> None:
    ts = reg.token_server
    assert ts is not None
    alice = RegistryClient(reg.url, reg.username, reg.password)
    image = build_image(random.Random(2), layers=1, layer_size=512)
    alice.push_image("public/tool", image, "latest")
    alice.push_image("private/tool", image, "latest")

    status, body = _token(ts, ["repository:public/tool:pull,push", "repository:private/tool:pull"])
    assert status == 200
    assert _claims(body["token"])["access"] == [
        {"type": "repository", "name": "public/tool", "actions": ["pull"]}
    ]
    anonymous = RegistryClient(reg.url)
    assert anonymous.get_manifest("public/tool", "latest").body == image.raw
    assert anonymous.request("GET", "/v2/private/tool/manifests/latest").status == 401
    push = anonymous.request("POST", "/v2/public/tool/blobs/uploads/", body=b"")
    assert push.status == 401
    assert "insufficient_scope" in push.headers["www-authenticate"]
    assert anonymous.request("GET", "/v2/_catalog").status == 401
    assert ts.count(user=None) >= 4


def test_wrong_password_is_401(reg: RunningRegistry) -> None:
    ts = reg.token_server
    assert ts is not None
    status, _ = _token(ts, ["repository:a:pull"], "alice", "wrong")
    assert status == 401
    status, _ = _token(ts, ["repository:a:pull"], "mallory", reg.password)
    assert status == 401
    assert ts.count(status=401) == 2
    assert ts.count() == 0


def test_expiry_and_distribution_leeway(reg: RunningRegistry) -> None:
    ts = reg.token_server
    assert ts is not None
    catalog = [Access("registry", "catalog", ("*",))]
    now = int(time.time())
    assert _bearer(reg, "GET", "/v2/_catalog", ts.mint(catalog)) == 200
    # Distribution 2.8 accepts tokens up to 60 s past `exp` (clock-skew leeway) ...
    assert (
        _bearer(reg, "GET", "/v2/_catalog", ts.mint(catalog, issued_at=now - 40, expires_in=10))
        == 200
    )
    # ... and refuses them after that.
    assert (
        _bearer(reg, "GET", "/v2/_catalog", ts.mint(catalog, issued_at=now - 200, expires_in=60))
        == 401
    )
    # Wrong audience or issuer are refused too.
    assert _bearer(reg, "GET", "/v2/_catalog", ts.mint(catalog, audience="other")) == 401
    assert _bearer(reg, "GET", "/v2/_catalog", ts.mint(catalog, issuer="other")) == 401


@pytest.mark.parametrize(
    ("key_header", "accepted"), [("x5c", True), ("kid", True), ("none", False)]
)
def test_key_header_modes(tmp_path: Path, key_header: str, accepted: bool) -> None:
    with (
        run_token_server(tmp_path / "ts", key_header=key_header) as ts,  # type: ignore[arg-type]
        run_registry(tmp_path, auth="token", token_server=ts) as reg,
    ):
        token = ts.mint([Access("registry", "catalog", ("*",))])
        assert _bearer(reg, "GET", "/v2/_catalog", token) == (200 if accepted else 401)


def test_parse_scope() -> None:
    assert parse_scope("repository:a/b:pull,push") == ("repository", "a/b", ("pull", "push"))
    assert parse_scope("repository:localhost:5000/a:pull") == (
        "repository",
        "localhost:5000/a",
        ("pull",),
    )
    assert parse_scope("repository(plugin):a:pull") == ("repository", "a", ("pull",))
    assert parse_scope("registry:catalog:*") == ("registry", "catalog", ("*",))
    assert parse_scope("garbage") is None
