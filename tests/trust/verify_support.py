"""Shared helpers for the trust tests: the real fixtures, read as a registry hands them over."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from catalog.trust import roots
from catalog.trust.roots import TrustConfig
from catalog.trust.signatures import VerifiedSignature
from catalog.trust.verify import verify_layer
from tests.formats.fixtures import COSIGN_LEGACY, FIXTURES, CosignLayer, sigstore_json

COSIGN_BUNDLE = FIXTURES / "cosign-bundle"
SIGSTORE_PYTHON = FIXTURES / "sigstore-python"
ATTACHMENT = "sha256:" + "a" * 64  # the signature manifest's digest; verification ignores it

KEYLESS_IDENTITY = "mitr@redhat.com"
KEYLESS_ISSUER = "https://github.com/login/oauth"
KEYLESS_TIME = "2023-01-20T20:51:33Z"  # Rekor's integrated time of the keyless fixture
# The conformance suite's default signer (its README and sigstore-conformance's action).
CONFORMANCE_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
CONFORMANCE_ISSUER = "https://token.actions.githubusercontent.com"
SIMPLE_SAMPLE = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"


def manifest_digest(case: str) -> str:
    return (
        "sha256:"
        + hashlib.sha256((COSIGN_LEGACY / case / "manifest.json").read_bytes()).hexdigest()
    )


def cosign_layer(case: str, name: str = "signature-1") -> CosignLayer:
    return sigstore_json(COSIGN_LEGACY / case / name)


def legacy_keys() -> tuple[roots.NamedKey, ...]:
    return (
        roots.public_key("cosign", (COSIGN_LEGACY / "cosign.pub").read_bytes()),
        roots.public_key("cosign2", (COSIGN_LEGACY / "cosign2.pub").read_bytes()),
    )


def linuxera_pki() -> roots.PkiRoot:
    return roots.pki_root(
        "linuxera",
        (COSIGN_LEGACY / "pki_root_crts.pem").read_bytes(),
        (COSIGN_LEGACY / "pki_intermediate_crts.pem").read_bytes(),
    )


def production(**extra: Any) -> TrustConfig:
    return TrustConfig(sigstore=(roots.sigstore_instance("production"),), **extra)


def verify_cosign(layer: CosignLayer, subject: str, trust: TrustConfig) -> VerifiedSignature:
    return verify_layer(
        layer.media_type,
        layer.payload,
        layer.annotations,
        subject,
        trust,
        attachment_digest=ATTACHMENT,
    )


def root_with(path: Path, source: Path, change: Any) -> Path:
    """A copy of the trusted root at ``source``, edited by ``change(doc)``, written to ``path``."""
    doc = json.loads(source.read_bytes())
    change(doc)
    path.write_text(json.dumps(doc))
    return path
