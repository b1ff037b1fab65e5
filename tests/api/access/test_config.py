"""The `auth` section of the serve config: mistakes that would open the server fail the load."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.app.auth_config import Role
from catalog.app.config import load_config
from catalog.errors import ConfigError

HASH = "a" * 64


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    return load_config(path)


def test_a_full_auth_section_loads(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        f"""
tls: {{cert_file: tls.crt, key_file: tls.key, client_ca_file: ca.crt, require_client_cert: true}}
auth:
  tokens: [{{name: ci, sha256: "{HASH.upper()}"}}]
  oidc:
    - {{issuer: "https://token.actions.githubusercontent.com", audience: xregistry}}
    - issuer: https://kubernetes.default.svc.cluster.local
      audience: xregistry
      jwks_url: https://kubernetes.default.svc/openid/v1/jwks
      principal_prefix: "prod:"
  certificates: true
  bindings:
    - {{role: gate, principals: ["token:ci", "oidc:repo:acme/app:ref:refs/heads/main"]}}
    - {{role: admin, groups: [platform]}}
""",
    )
    auth = config.auth  # type: ignore[attr-defined]
    assert auth.tokens[0].sha256 == HASH
    assert auth.bindings[0].role is Role.GATE
    assert auth.oidc[1].principal_prefix == "prod:"


def test_no_auth_section_means_none(tmp_path: Path) -> None:
    assert load(tmp_path, "listen: 127.0.0.1:50051\n").auth is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{}", "at least one of tokens, oidc, certificates"),
        ("{tokens: [{name: ci, sha256: s3cret}]}", "64 hex digits"),
        ("{tokens: [{name: ci, token: s3cret}]}", "token"),
        (
            "{oidc: [{issuer: 'http://issuer.example', audience: x}]}",
            "keys must come over https",
        ),
        (
            "{certificates: true, bindings: [{role: admin, principals: [ci]}]}",
            "a principal is KIND:NAME",
        ),
        (
            "{certificates: true, bindings: [{role: root, principals: ['token:ci']}]}",
            "role",
        ),
        (
            f"{{tokens: [{{name: a, sha256: {HASH}}}, {{name: b, sha256: {HASH}}}]}}",
            "token hashes must be unique",
        ),
    ],
)
def test_mistakes_are_refused(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, f"auth: {section}\n")
