"""Sigstore bundles: cosign's OCI bundle referrer, sigstore-python's v0.2 bundle, key bundles."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.trust import roots
from catalog.trust.roots import TrustConfig
from catalog.trust.verify import verify_bundle, verify_layer
from tests.formats.fixtures import CONFORMANCE
from tests.trust.verify_support import ATTACHMENT, COSIGN_BUNDLE, SIGSTORE_PYTHON, production

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
RFC8785_RELEASE = (
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
)
ACTIONS = "https://token.actions.githubusercontent.com"


def cosign_bundle() -> tuple[bytes, str]:
    """cosign's bundle referrer layer and the image digest its statement names."""
    data = (COSIGN_BUNDLE / "oci-attestation.sigstore.json").read_bytes()
    statement = json.loads(base64.b64decode(json.loads(data)["dsseEnvelope"]["payload"]))
    return data, "sha256:" + statement["subject"][0]["digest"]["sha256"]


def public_pem(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pgi() -> TrustConfig:
    return TrustConfig(
        sigstore=(roots.trusted_root_file("pgi", COSIGN_BUNDLE / "trusted_root_pgi.json"),)
    )


def test_cosign_bundle_referrer_verifies_with_its_trusted_root() -> None:
    data, subject = cosign_bundle()
    annotations = {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": "https://cosign.sigstore.dev/attestation/v1",
    }

    result = verify_layer(
        BUNDLE_V03, data, annotations, subject, pgi(), attachment_digest=ATTACHMENT
    )

    assert result.verified, result.reason
    assert result.method == "keyless"
    assert result.trust_root == "trusted-root:pgi"
    assert result.identity == "cody@soyland.com"
    assert result.issuer == "https://github.com/login/oauth"
    assert result.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    assert result.signed_digests == (subject,)
    assert result.log_index == 175508996
    assert result.integrated_time == 1740770291
    assert result.reason.startswith("verified: sigstore-python verified the bundle against")


def test_cosign_bundle_for_another_image_fails() -> None:
    data, subject = cosign_bundle()
    other = "sha256:" + "0" * 64

    result = verify_layer(BUNDLE_V03, data, {}, other, pgi(), attachment_digest=ATTACHMENT)

    assert not result.verified
    assert result.reason == f"signature is for another digest: payload names {subject}, not {other}"


def test_cosign_bundle_with_a_forged_statement_fails() -> None:
    data, subject = cosign_bundle()
    bundle = json.loads(data)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    result = verify_layer(
        BUNDLE_V03, json.dumps(bundle).encode(), {}, subject, pgi(), attachment_digest=ATTACHMENT
    )

    assert not result.verified
    assert result.method == "keyless"
    assert result.reason.startswith("bundle does not verify against trusted-root:pgi: ")


def test_sigstore_python_v02_bundle_verifies() -> None:
    wheel = (SIGSTORE_PYTHON / "bundle_v3_github.whl").read_bytes()
    bundle = (SIGSTORE_PYTHON / "bundle_v3_github.whl.sigstore").read_bytes()
    digest = "sha256:" + hashlib.sha256(wheel).hexdigest()

    result = verify_bundle(bundle, digest, production(), artifact=wheel)
    as_layer = verify_layer(
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        bundle,
        {},
        digest,
        production(),
        attachment_digest=ATTACHMENT,
    )

    assert result.verified, result.reason
    assert result.identity == RFC8785_RELEASE
    assert result.issuer == ACTIONS
    assert result.signed_digests == (digest,)
    assert as_layer.verified, as_layer.reason


def test_sigstore_python_bundle_for_another_artifact_fails() -> None:
    bundle = (SIGSTORE_PYTHON / "bundle_v3_github.whl.sigstore").read_bytes()

    result = verify_bundle(bundle, "sha256:" + "1" * 64, production())

    assert not result.verified
    assert result.reason.startswith("signature is for another digest: payload names sha256:")


def test_message_signature_bundle_as_an_oci_layer() -> None:
    """A message-signature bundle attached to a manifest signs the manifest's digest."""
    case = CONFORMANCE / "happy-path-v0.3"
    artifact = "sha256:" + hashlib.sha256((CONFORMANCE / "a.txt").read_bytes()).hexdigest()
    data = (case / "bundle.sigstore.json").read_bytes()

    good = verify_layer(BUNDLE_V03, data, {}, artifact, production(), attachment_digest=ATTACHMENT)
    no_hint = json.loads(data)
    del no_hint["messageSignature"]["messageDigest"]
    other = "sha256:" + "2" * 64
    bad = verify_layer(
        BUNDLE_V03,
        json.dumps(no_hint).encode(),
        {},
        other,
        production(),
        attachment_digest=ATTACHMENT,
    )

    assert good.verified, good.reason
    assert good.signed_digests == (artifact,)
    # Without the (unsigned) digest hint, the signature itself must fail for another digest.
    assert not bad.verified
    assert bad.reason.startswith("bundle does not verify against sigstore:production: ")


def test_key_bundle_verifies_with_its_key_and_the_log() -> None:
    case = CONFORMANCE / "managed-key-happy-path"
    data = (case / "bundle.sigstore.json").read_bytes()
    artifact = (CONFORMANCE / "a.txt").read_bytes()
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    key = roots.public_key("managed", (case / "key.pub").read_bytes())
    other = roots.public_key("other", public_pem(ec.generate_private_key(ec.SECP256R1())))

    good = verify_bundle(data, digest, production(keys=(key,)), artifact=artifact)
    wrong = verify_bundle(data, digest, production(keys=(other,)))
    no_log = verify_bundle(data, digest, TrustConfig(keys=(key,)))

    assert good.verified, good.reason
    assert good.method == "key"
    assert good.trust_root == "key:managed"
    assert good.key_fingerprint == key.fingerprint
    assert good.log_index is not None
    assert not wrong.verified
    assert wrong.reason == "signature does not verify with key other"
    assert not no_log.verified
    assert no_log.reason.endswith("in no trusted root (none configured)")


def test_not_a_bundle() -> None:
    result = verify_layer(
        BUNDLE_V03, b"{}", {}, "sha256:" + "3" * 64, production(), attachment_digest=ATTACHMENT
    )
    assert not result.verified
    assert result.reason.startswith("not a valid Sigstore bundle: ")
