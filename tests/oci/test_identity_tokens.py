"""Identity tokens (docker's `identitytoken`) exchanged by the OAuth2 refresh-token POST, against a
real Distribution registry and the harness's token server (real HTTP, real JWTs)."""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.oci.credentials import Credentials, CredentialStore, DockerConfig
from catalog.oci.errors import AuthError, Denied, OCIError, Unauthorized
from tests.conftest import ClientFactory
from tests.harness.hostile import hostile_pair
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry, run_registry
from tests.harness.tokenserver import TokenServer
from tests.pushing import push_built


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("token"), auth="token") as reg:
        yield reg


@pytest.fixture
def server(token_registry: RunningRegistry) -> Iterator[TokenServer]:
    assert token_registry.token_server is not None
    token_registry.token_server.clear()
    yield token_registry.token_server
    token_registry.token_server.oauth = True
    token_registry.token_server.refusal_status = 401


def realms(server: TokenServer) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{server.port}"})


def docker_login(path: Path, host: str, user: str, token: str) -> DockerConfig:
    """config.json as `docker login` writes it for an identity token."""
    entry = {"auth": base64.b64encode(f"{user}:".encode()).decode(), "identitytoken": token}
    path.write_text(json.dumps({"auths": {host: entry}}))
    return DockerConfig(path)


async def test_identity_token_is_exchanged_by_the_oauth2_post(
    token_registry: RunningRegistry,
    server: TokenServer,
    make_client: ClientFactory,
    rng: random.Random,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    first = server.issue_refresh_token("alice")
    store = CredentialStore(docker_config=docker_login(tmp_path / "c.json", token_registry.host,
                                                       "alice", first))  # fmt: skip
    client = make_client(token_registry.host, store=store, token_realms=realms(server))
    image = build_image(rng, layers=1)
    await push_built(client, "idt/app", image, "v1")
    assert (await client.get_manifest("idt/app", "v1")).raw == image.raw

    posts = [r for r in server.requests if r.method == "POST"]
    assert posts
    assert all(r.status == 200 for r in posts)
    assert {(r.grant_type, r.client_id, r.user) for r in posts} == {
        ("refresh_token", "xregistry", "alice")
    }
    assert [r for r in server.requests if r.method == "GET"] == []  # no GET, no Basic
    # Each refresh grant rotates the token and the server refuses a used one: every POST after
    # the first succeeded only because the client kept the token of the previous answer.
    assert len(posts) >= 2
    assert first not in caplog.text


async def test_a_token_server_without_oauth2_gets_the_get_without_the_token(
    token_registry: RunningRegistry, server: TokenServer, make_client: ClientFactory,
    rng: random.Random,
) -> None:  # fmt: skip
    assert token_registry.username
    assert token_registry.password
    owner = make_client(
        token_registry.host,
        credentials=Credentials(token_registry.username, token_registry.password),
        token_realms=realms(server),
    )
    image = build_image(rng, layers=1)
    await push_built(owner, "public/idt", image, "v1")
    await push_built(owner, "private/idt", image, "v1")
    server.oauth = False
    server.clear()
    refresh = server.issue_refresh_token("alice")
    only_token = make_client(
        token_registry.host,
        credentials=Credentials("", "", identity_token=refresh),
        token_realms=realms(server),
    )
    # As go-containerregistry: POST answered 404 → the GET exchange, with no Basic credentials
    # (the refresh token is not a password): anonymous, so public pulls work, private do not.
    assert (await only_token.get_manifest("public/idt", "v1")).raw == image.raw
    with pytest.raises((Unauthorized, Denied)):
        await only_token.get_manifest("private/idt", "v1")
    methods = [(r.method, r.user, r.status) for r in server.requests]
    assert ("POST", None, 200) not in methods
    assert {m for m in methods if m[0] == "GET"} == {("GET", None, 200)}

    # With a user and password beside the token, the GET sends those (and works for private).
    both = make_client(
        token_registry.host,
        credentials=Credentials(token_registry.username, token_registry.password, refresh),
        token_realms=realms(server),
    )
    assert (await both.get_manifest("private/idt", "v1")).raw == image.raw


@pytest.mark.parametrize("refusal", [401, 400])
async def test_a_refused_refresh_token_is_never_repeated(
    token_registry: RunningRegistry,
    server: TokenServer,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    refusal: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.refusal_status = refusal
    secret = "rt-never-issued-" + "x" * 20
    client = make_client(
        token_registry.host,
        credentials=Credentials("alice", "", identity_token=secret),
        token_realms=realms(server),
    )
    with pytest.raises(AuthError) as caught:
        await client.get_manifest("idt/app", "v1")
    assert "refused the credentials" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert secret not in caplog.text
    assert [(r.method, r.grant_type, r.status) for r in server.requests] == [
        ("POST", "refresh_token", refusal)
    ]


async def test_the_token_goes_to_no_foreign_realm(
    token_registry: RunningRegistry, server: TokenServer, make_client: ClientFactory
) -> None:
    # Without token_realms the harness's server (another port) is not the registry's own.
    client = make_client(
        token_registry.host, credentials=Credentials("", "", identity_token="rt-foreign")
    )
    with pytest.raises(AuthError, match="not on the registry's host"):
        await client.get_manifest("idt/app", "v1")
    assert server.requests == []


def test_a_helper_token_user_means_an_identity_token(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"h.example": {"identitytoken": "rt-1"}}}))
    assert DockerConfig(config).lookup("h.example") == Credentials("", "", identity_token="rt-1")
    assert "rt-1" not in repr(Credentials("", "", identity_token="rt-1"))


async def test_a_redirected_token_post_is_not_followed(make_client: ClientFactory) -> None:
    """A token server answering the refresh-token POST with a 307 elsewhere: a client following
    it would resend the form, refresh token included, to wherever the redirect points."""
    secret = "rt-redirected-" + "y" * 20
    async with hostile_pair() as (hostile, recorder):
        hostile.challenge = f'Bearer realm="http://{hostile.host}/token",service="hostile"'
        hostile.token_redirect = f"http://{recorder.host}/stolen"
        client = make_client(hostile.host, credentials=Credentials("", "", identity_token=secret))
        with pytest.raises(OCIError) as caught:
            await client.ping()
        assert "307" in str(caught.value)
        assert secret not in str(caught.value)
        assert recorder.seen == []
        # The POST itself carried the token in its body only: never in a URL or a header.
        assert ("POST", "/token") in [(m, p) for m, p, _ in hostile.requests]
        assert all(secret not in p and secret not in (a or "") for _, p, a in hostile.requests)


async def test_an_identity_token_is_no_basic_password(make_client: ClientFactory) -> None:
    secret = "rt-basic-" + "z" * 20
    async with hostile_pair() as (hostile, _):
        hostile.challenge = 'Basic realm="hostile"'
        client = make_client(hostile.host, credentials=Credentials("", "", identity_token=secret))
        with pytest.raises(AuthError, match="username and password"):
            await client.ping()
        assert [auth for _, _, auth in hostile.requests] == [None]
