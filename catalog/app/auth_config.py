"""The ``auth`` section of the serve configuration: who may call the API, and with which role.

Validated here, enforced by ``catalog.api.access``. Static tokens are stored only as SHA-256
hashes; OIDC issuers other than loopback ones must use https; bindings name principals as
``kind:name`` (``token:ci``, ``oidc:system:serviceaccount:ns:sa``, ``cert:spiffe://…``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog.hostport import is_loopback_host


class Role(StrEnum):
    VIEWER = "viewer"  # reads everything but secrets
    GATE = "gate"  # CheckImage only: CI and admission callers
    OPERATOR = "operator"  # viewer, plus indexing, rule runs, catalog evaluation
    ADMIN = "admin"  # everything: policies, registries, rules
    NOTIFIER = "notifier"  # registries' push notifications only
    METRICS = "metrics"  # GET /metrics only: a Prometheus scraper


# Principal kinds a binding may name (the ones authentication produces).
BINDABLE_KINDS = ("token", "oidc", "cert")

_HEX64 = re.compile(r"[0-9a-f]{64}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StaticToken(_Section):
    name: str = Field(min_length=1, max_length=200, description="the principal: token:NAME")
    sha256: str = Field(description="hex SHA-256 of the token; the token itself is never stored")

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.strip().lower()
        if not _HEX64.fullmatch(value):
            raise ValueError("sha256 must be 64 hex digits (the token's SHA-256, not the token)")
        return value


def https_url(value: str) -> str:
    """``value`` if it is an https URL (or http on loopback); ValueError otherwise."""
    parts = urlsplit(value)
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"{value!r}: keys must come over https (http only on loopback)")
    return value


class OidcIssuer(_Section):
    issuer: str = Field(description="the `iss` claim, exactly; discovery is fetched below it")
    audience: str = Field(min_length=1, description="the `aud` the token must carry")
    jwks_url: str | None = Field(default=None, description="instead of discovery")
    principal_claim: str = "sub"
    groups_claim: str | None = None
    principal_prefix: str = Field(
        default="", description="prepended to the name and groups (keeps issuers apart)"
    )
    ca_file: Path | None = Field(default=None, description="CA bundle for the issuer's https")
    jwks_cooldown: float = Field(
        default=30.0, ge=0, description="seconds between re-fetches for an unknown key id"
    )

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else https_url(value)


class Binding(_Section):
    role: Role
    principals: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)

    @field_validator("principals")
    @classmethod
    def _kinds(cls, values: list[str]) -> list[str]:
        for value in values:
            kind, _, name = value.partition(":")
            if kind not in BINDABLE_KINDS or not name:
                raise ValueError(
                    f"{value!r}: a principal is KIND:NAME with KIND one of "
                    + ", ".join(BINDABLE_KINDS)
                )
        return values


class AuthSettings(_Section):
    tokens: list[StaticToken] = Field(default_factory=list)
    oidc: list[OidcIssuer] = Field(default_factory=list)
    certificates: bool = Field(default=False, description="principals from mTLS client certs")
    bindings: list[Binding] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> AuthSettings:
        if not (self.tokens or self.oidc or self.certificates):
            raise ValueError("auth needs at least one of tokens, oidc, certificates")
        for what, names in (
            ("token names", [t.name for t in self.tokens]),
            ("token hashes", [t.sha256 for t in self.tokens]),
            ("oidc issuers", [o.issuer for o in self.oidc]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{what} must be unique: {', '.join(duplicates)}")
        return self
