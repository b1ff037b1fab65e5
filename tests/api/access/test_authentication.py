"""Who is calling, over real channels: static tokens, OIDC JWTs from a real issuer on loopback
(with key rotation), mTLS client certificates; every bad credential refused as UNAUTHENTICATED
without echoing it; the principal set inside unary and streaming calls."""

from __future__ import annotations

import time
from typing import Any

import grpc
import grpc.aio
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.app.auth_config import AuthSettings, Binding, OidcIssuer, Role, StaticToken
from tests.api.access.certs import Pki
from tests.api.access.conftest import bearer, serving_access, sha256
from tests.api.access.issuer import AUDIENCE, Issuer

CI_TOKEN = "xr_ci_7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c1e"
SUBJECT = "system:serviceaccount:ci:deployer"


def settings(issuer: Issuer | None = None, **oidc: Any) -> AuthSettings:
    return AuthSettings(
        tokens=[StaticToken(name="ci", sha256=sha256(CI_TOKEN))],
        oidc=[OidcIssuer(issuer=issuer.url, audience=AUDIENCE, groups_claim="groups", **oidc)]
        if issuer
        else [],
        certificates=True,
        bindings=[
            Binding(role=Role.VIEWER, principals=["token:ci", f"oidc:{SUBJECT}"]),
            Binding(role=Role.OPERATOR, groups=["platform"]),
            Binding(
                role=Role.VIEWER,
                principals=["cert:spiffe://example.org/ci", "cert:bot.example", "cert:ci-bot"],
            ),
        ],
    )


async def refused(api_call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api_call
    return caught.value


async def test_a_static_token_is_its_name(issuer: Issuer) -> None:
    async with serving_access(settings(issuer)) as api, api.channel() as channel:
        assert await api.whoami(channel, CI_TOKEN) == "token:ci"


async def test_an_oidc_token_is_its_subject_and_a_streaming_call_runs_as_it(issuer: Issuer) -> None:
    async with serving_access(settings(issuer)) as api, api.channel() as channel:
        token = issuer.token(SUBJECT, groups=["platform"])
        assert await api.whoami(channel, token) == f"oidc:{SUBJECT}"
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        # IndexRegistry needs `operate`: granted through the group binding only.
        responses = stub.IndexRegistry(catalog_pb2.IndexRegistryRequest(), metadata=bearer(token))
        assert len([r async for r in responses]) == 3
        assert api.servicer.seen == [f"oidc:{SUBJECT}"] * 3


async def test_a_group_binding_grants_its_role_and_nothing_else(issuer: Issuer) -> None:
    async with serving_access(settings(issuer)) as api, api.channel() as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        other = issuer.token("repo:acme/app:ref:refs/heads/main", groups=["platform", "dev"])
        assert await api.whoami(channel, other) == "oidc:repo:acme/app:ref:refs/heads/main"
        ungrouped = issuer.token("repo:acme/app:ref:refs/heads/main")
        error = await refused(api.whoami(channel, ungrouped))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "may not call /xregistry.v1.CatalogService/GetRegistry" in (error.details() or "")
        # The viewer subject is not an operator.
        error = await refused(
            stub.IndexRegistry(
                catalog_pb2.IndexRegistryRequest(), metadata=bearer(issuer.token(SUBJECT))
            ).read()
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert api.servicer.seen == []


def bad_tokens(issuer: Issuer) -> dict[str, str]:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    return {
        "garbage": "not-a-token",
        "unknown static token": "xr_ci_0000000000000000000000000000000",
        "malformed jwt": "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
        "alg none": issuer.unsigned(),
        "alg not a name": issuer.unsigned(["RS256"]),
        "issuer not a name": issuer.token(SUBJECT, iss=[issuer.url]),
        "HS256 keyed with the RSA public key": issuer.hs256_with_public_key(),
        "expired": issuer.token(SUBJECT, iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "not yet valid": issuer.token(SUBJECT, nbf=now + 3600, exp=now + 7200),
        "wrong issuer": issuer.token(SUBJECT, iss="https://issuer.example"),
        "wrong audience": issuer.token(SUBJECT, aud="someone-else"),
        "unknown kid": issuer.token(SUBJECT, kid="no-such-kid", key=stranger),
        "right kid, another key": issuer.token(SUBJECT, key=stranger),
        "no expiry": issuer.token(SUBJECT, exp=None),
        "no subject": issuer.token(None),  # type: ignore[arg-type]
        "tampered payload": _tampered(issuer.token(SUBJECT)),
    }


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    return ".".join(
        (header, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), signature)
    )


async def test_every_bad_credential_is_unauthenticated_and_never_echoed(issuer: Issuer) -> None:
    async with serving_access(settings(issuer)) as api, api.channel() as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        request = catalog_pb2.GetRegistryRequest(name="registries/x")
        for kind, token in bad_tokens(issuer).items():
            error = await refused(stub.GetRegistry(request, metadata=bearer(token)))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, kind
            assert token not in (error.details() or ""), kind
            assert token.split(".")[0] not in (error.details() or ""), kind
        for metadata in (
            None,
            (("authorization", f"Basic {CI_TOKEN}"),),
            (("authorization", "Bearer "),),
            (("authorization", f"Bearer {CI_TOKEN}"), ("authorization", f"Bearer {CI_TOKEN}")),
        ):
            error = await refused(stub.GetRegistry(request, metadata=metadata))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
            assert CI_TOKEN not in (error.details() or "")
        # The refusals are the tokens', not the issuer's: a good one still passes.
        assert await api.whoami(channel, issuer.token(SUBJECT)) == f"oidc:{SUBJECT}"


async def test_a_verified_token_is_not_verified_again_until_it_expires(issuer: Issuer) -> None:
    async with serving_access(settings(issuer)) as api, api.channel() as channel:
        assert api.access.authenticator is not None
        oidc = api.access.authenticator.oidc
        token = issuer.token(SUBJECT)
        for _ in range(5):
            assert await api.whoami(channel, token) == f"oidc:{SUBJECT}"
        assert oidc.signature_checks == 1
        assert await api.whoami(channel, issuer.token(SUBJECT, jti="another")) == f"oidc:{SUBJECT}"
        assert oidc.signature_checks == 2
        assert issuer.jwks_fetches == 1


async def test_a_rotated_key_is_fetched_when_its_kid_first_appears(issuer: Issuer) -> None:
    async with serving_access(settings(issuer, jwks_cooldown=0)) as api, api.channel() as channel:
        assert await api.whoami(channel, issuer.token(SUBJECT)) == f"oidc:{SUBJECT}"
        old = issuer.token(SUBJECT, jti="signed-before-the-rotation")
        issuer.rotate()
        assert await api.whoami(channel, issuer.token(SUBJECT)) == f"oidc:{SUBJECT}"
        assert issuer.jwks_fetches == 2
        # The old key is gone from the issuer, so a token it signed and never seen is refused.
        error = await refused(api.whoami(channel, old))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "unknown key id" in (error.details() or "")


async def test_unknown_kids_refetch_the_keys_at_most_once_per_cooldown(issuer: Issuer) -> None:
    async with (
        serving_access(settings(issuer, jwks_cooldown=3600)) as api,
        api.channel() as channel,
    ):
        assert await api.whoami(channel, issuer.token(SUBJECT)) == f"oidc:{SUBJECT}"
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for n in range(5):
            token = issuer.token(SUBJECT, kid=f"made-up-{n}", key=stranger)
            assert (await refused(api.whoami(channel, token))).code() == (
                grpc.StatusCode.UNAUTHENTICATED
            )
        assert issuer.jwks_fetches == 1


async def test_a_configured_jwks_url_skips_discovery(issuer: Issuer) -> None:
    config = settings(issuer, jwks_url=f"{issuer.url}/keys", principal_prefix="cluster-a:")
    config = config.model_copy(
        update={"bindings": [Binding(role=Role.VIEWER, principals=[f"oidc:cluster-a:{SUBJECT}"])]}
    )
    async with serving_access(config) as api, api.channel() as channel:
        assert await api.whoami(channel, issuer.token(SUBJECT)) == f"oidc:cluster-a:{SUBJECT}"


async def test_an_unreachable_issuer_is_unauthenticated_not_an_error(
    issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    config = settings(issuer, jwks_url="http://127.0.0.1:9/keys")
    async with serving_access(config) as api, api.channel() as channel:
        assert api.access.authenticator is not None
        jwks = api.access.authenticator.oidc.jwks(issuer.url)
        for n in range(5):  # tokens anyone can make: a fetch each would hammer the issuer
            token = issuer.token(SUBJECT, kid=f"made-up-{n}", key=issuer.keys[issuer.current])
            error = await refused(api.whoami(channel, token))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            # Why is the server's to know: it names the issuer's hosts.
            assert error.details() == "invalid bearer token: the issuer's keys are unavailable"
        assert jwks.fetches == 1  # not tried again within the cooldown of the failed fetch
    assert "cannot fetch the keys of" in caplog.text
    assert "127.0.0.1:9" in caplog.text


async def test_a_large_jwks_under_the_cap_is_read_whole(issuer: Issuer) -> None:
    issuer.jwks_padding = 900_000  # many network reads
    async with serving_access(settings(issuer)) as api, api.channel() as channel:
        assert await api.whoami(channel, issuer.token(SUBJECT)) == f"oidc:{SUBJECT}"


async def test_a_malformed_key_in_the_jwks_is_skipped_and_the_others_used(issuer: Issuer) -> None:
    """One hostile entry must not cost the issuer's other keys (PyJWT raises ``TypeError``,
    not its own error, for an ``alg`` that is a list or an object)."""
    good = issuer.jwks()["keys"][0]
    issuer.extra_keys = [
        {**good, "kid": "alg-list", "alg": ["RS256"]},
        {**good, "kid": "alg-object", "alg": {"RS256": True}},
        {**good, "kid": "n-number", "n": 5},
        {**good, "kid": "kty-list", "kty": ["RSA"]},
        {**good, "kid": 7},
        "not an object",
    ]
    async with serving_access(settings(issuer)) as api, api.channel() as channel:
        assert await api.whoami(channel, issuer.token(SUBJECT)) == f"oidc:{SUBJECT}"
        for kid in ("alg-list", "alg-object", "n-number", "kty-list"):
            token = issuer.token(SUBJECT, kid=kid, key=issuer.keys[issuer.current])
            error = await refused(api.whoami(channel, token))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "unknown key id" in (error.details() or "")
        assert issuer.jwks_fetches == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"discovery": {"issuer": "https://impostor.example"}}, "names another issuer"),
        ({"discovery": {"jwks_uri": "http://keys.example/jwks"}}, "keys must come over https"),
        ({"jwks_padding": 1 << 20}, "larger than 1048576 bytes"),
        ({"jwks_nesting": 10_000}, "JSON nested deeper than 64 levels"),
    ],
)
async def test_keys_from_a_doubtful_issuer_are_not_used(
    issuer: Issuer, change: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in change.items():
        setattr(issuer, name, value)
    async with serving_access(settings(issuer)) as api, api.channel() as channel:
        error = await refused(api.whoami(channel, issuer.token(SUBJECT)))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == "invalid bearer token: the issuer's keys are unavailable"
    assert reason in caplog.text


async def test_client_certificates_name_the_caller(tmp_path: Any) -> None:
    pki = Pki(tmp_path)
    async with serving_access(settings(), pki.server_credentials()) as api:
        for credentials, expected in (
            (
                pki.client("spiffe", cn="ci-bot", uri="spiffe://example.org/ci", dns="bot.example"),
                "cert:spiffe://example.org/ci",
            ),
            (pki.client("dns", cn="ci-bot", dns="bot.example"), "cert:bot.example"),
            (pki.client("cn", cn="ci-bot"), "cert:ci-bot"),
        ):
            async with api.channel(credentials) as channel:
                assert await api.whoami(channel) == expected
                # A bearer token, when sent, names the caller even over mTLS.
                assert await api.whoami(channel, CI_TOKEN) == "token:ci"
                error = await refused(api.whoami(channel, "wrong"))
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        async with api.channel(pki.client("stranger", cn="someone")) as channel:
            error = await refused(api.whoami(channel))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "cert:someone may not call" in (error.details() or "")


async def test_certificates_off_ignores_them(tmp_path: Any) -> None:
    pki = Pki(tmp_path)
    config = settings().model_copy(update={"certificates": False})
    async with (
        serving_access(config, pki.server_credentials()) as api,
        api.channel(pki.client("spiffe", cn="ci-bot", uri="spiffe://example.org/ci")) as channel,
    ):
        assert (await refused(api.whoami(channel))).code() == grpc.StatusCode.UNAUTHENTICATED


async def test_without_an_auth_section_every_call_runs_as_anonymous() -> None:
    async with serving_access(None) as api, api.channel() as channel:
        assert await api.whoami(channel) == "anonymous:anonymous"
        assert await api.whoami(channel, "whatever") == "anonymous:anonymous"
