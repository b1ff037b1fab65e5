"""OIDC JWTs (Kubernetes service-account tokens, CI tokens): verified with PyJWT against the
issuer's published keys; the principal and groups come from configurable claims."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from catalog.api.access.jwks import ASYMMETRIC, Jwks, KeysUnavailable
from catalog.app.auth_config import OidcIssuer
from catalog.principals import Principal, PrincipalKind

LEEWAY_SECONDS = 30  # clock skew between the issuer and this server


class InvalidToken(Exception):
    """Why a token was refused; the message never contains the token."""


@dataclass(frozen=True, slots=True)
class Verified:
    principal: Principal
    expires: float  # the token's `exp`, seconds since the epoch


class OidcVerifiers:
    def __init__(self, issuers: Sequence[OidcIssuer]) -> None:
        self._by_issuer = {issuer.issuer: _Issuer(issuer) for issuer in issuers}
        self.signature_checks = 0  # tests show a cached token costs none

    def jwks(self, issuer: str) -> Jwks:
        return self._by_issuer[issuer].jwks

    async def verify(self, token: str) -> Verified:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        named = claims.get("iss")
        issuer = self._by_issuer.get(named) if isinstance(named, str) else None
        if issuer is None:
            raise InvalidToken("unknown issuer")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ASYMMETRIC:
            raise InvalidToken("the algorithm is not accepted")
        if not isinstance(kid, str):
            raise InvalidToken("no key id (kid)")
        try:
            key = await issuer.jwks.key(kid)
        except KeysUnavailable:  # why is in the server's log: it names the issuer's hosts
            raise InvalidToken("the issuer's keys are unavailable") from None
        if key is None:
            raise InvalidToken("unknown key id")
        if key.algorithm_name != alg:
            raise InvalidToken(f"key {kid!r} does not sign with {alg}")
        self.signature_checks += 1
        try:
            verified = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=issuer.config.audience,
                issuer=issuer.config.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("not yet valid") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong issuer") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {type(exc).__name__}") from None
        return Verified(issuer.principal(verified), float(verified["exp"]))


class _Issuer:
    def __init__(self, config: OidcIssuer) -> None:
        self.config = config
        self.jwks = Jwks(config)

    def principal(self, claims: dict[str, Any]) -> Principal:
        prefix = self.config.principal_prefix
        name = claims.get(self.config.principal_claim)
        if not isinstance(name, str) or not name:
            raise InvalidToken(f"no {self.config.principal_claim!r} claim")
        groups: Any = claims.get(self.config.groups_claim) if self.config.groups_claim else None
        if groups is None:
            groups = []
        elif isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InvalidToken(f"the {self.config.groups_claim!r} claim is not a list of names")
        return Principal(
            PrincipalKind.OIDC, prefix + name, tuple(prefix + group for group in groups)
        )
