"""Key-pair and private-PKI signatures of every algorithm cosign uses, made here with real keys."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from catalog.formats.dsse import pae
from catalog.oci import mediatypes as mt
from catalog.trust import roots
from catalog.trust.roots import TrustConfig
from catalog.trust.verify import verify_bundle, verify_layer
from tests.trust.verify_support import ATTACHMENT

SUBJECT = "sha256:" + "5" * 64
Private = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
Signer = Callable[[bytes], bytes]


def payload(subject: str = SUBJECT) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "registry.example/app"},
                "image": {"docker-manifest-digest": subject},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


def pem(private: Private) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def p256() -> tuple[Private, Signer]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))


def p384_sha384() -> tuple[Private, Signer]:
    key = ec.generate_private_key(ec.SECP384R1())
    return key, lambda data: key.sign(data, ec.ECDSA(hashes.SHA384()))


def p384_sha256() -> tuple[Private, Signer]:
    """cosign's Go verifier hashes with SHA-256 whatever the curve."""
    key = ec.generate_private_key(ec.SECP384R1())
    return key, lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))


def rsa_pkcs1() -> tuple[Private, Signer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def rsa_pss() -> tuple[Private, Signer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    return key, lambda data: key.sign(data, pss, hashes.SHA256())


def ed25519_key() -> tuple[Private, Signer]:
    key = ed25519.Ed25519PrivateKey.generate()
    return key, key.sign


KINDS = [p256, p384_sha384, p384_sha256, rsa_pkcs1, rsa_pss, ed25519_key]


def sig_layer(
    signer: Signer, data: bytes, extra: dict[str, str] | None = None
) -> tuple[bytes, dict[str, str]]:
    signature = base64.b64encode(signer(data)).decode()
    return data, {"dev.cosignproject.cosign/signature": signature, **(extra or {})}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_key_pair_signature_of_each_algorithm(kind: Callable[[], tuple[Private, Signer]]) -> None:
    private, signer = kind()
    stranger, _ = kind()
    layer, annotations = sig_layer(signer, payload())
    trust = TrustConfig(keys=(roots.public_key("mine", pem(private)),))
    wrong = TrustConfig(keys=(roots.public_key("stranger", pem(stranger)),))

    good = verify_layer(
        mt.COSIGN_SIMPLESIGNING, layer, annotations, SUBJECT, trust, attachment_digest=ATTACHMENT
    )
    bad = verify_layer(
        mt.COSIGN_SIMPLESIGNING, layer, annotations, SUBJECT, wrong, attachment_digest=ATTACHMENT
    )

    assert good.verified, good.reason
    assert (good.method, good.trust_root) == ("key", "key:mine")
    assert good.key_fingerprint == trust.keys[0].fingerprint
    assert not bad.verified
    assert bad.reason == "signature does not verify with key stranger"


def test_key_signed_dsse_attestation() -> None:
    private, signer = p256()
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "app", "digest": {"sha256": SUBJECT.removeprefix("sha256:")}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "x"}},
        }
    ).encode()
    payload_type = "application/vnd.in-toto+json"
    envelope = json.dumps(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(statement).decode(),
            "signatures": [
                {
                    "keyid": "",
                    "sig": base64.b64encode(signer(pae(payload_type, statement))).decode(),
                }
            ],
        }
    ).encode()
    trust = TrustConfig(keys=(roots.public_key("mine", pem(private)),))
    annotations = {
        "dev.cosignproject.cosign/signature": "",
        "predicateType": "https://slsa.dev/provenance/v1",
    }

    result = verify_layer(
        mt.DSSE_ENVELOPE, envelope, annotations, SUBJECT, trust, attachment_digest=ATTACHMENT
    )

    assert result.verified, result.reason
    assert result.predicate_type == "https://slsa.dev/provenance/v1"
    assert result.signed_digests == (SUBJECT,)


def test_ed25519_message_bundle_needs_the_artifact() -> None:
    private, signer = ed25519_key()
    artifact = b"hello, artifact\n"
    digest = hashlib.sha256(artifact).digest()
    bundle = json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": "mine"}},
            "messageSignature": {
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": base64.b64encode(digest).decode(),
                },
                "signature": base64.b64encode(signer(artifact)).decode(),
            },
        }
    ).encode()
    trust = TrustConfig(keys=(roots.public_key("mine", pem(private)),))

    with_artifact = verify_bundle(bundle, f"sha256:{digest.hex()}", trust, artifact=artifact)
    digest_only = verify_bundle(bundle, f"sha256:{digest.hex()}", trust)

    assert with_artifact.verified, with_artifact.reason
    assert not digest_only.verified
    assert digest_only.reason == (
        "an Ed25519 signature can only be checked against the artifact itself"
    )


class Pki:
    """A private CA, an intermediate and code-signing leaves, valid around now."""

    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._cert("Test Root", self.root_key, self.root_key, None, ca=True)
        self.mid_key = ec.generate_private_key(ec.SECP256R1())
        self.mid = self._cert("Test Intermediate", self.mid_key, self.root_key, self.root, ca=True)

    def leaf(
        self, *, days: tuple[int, int] = (-1, 30)
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        return key, self._cert("Team A", key, self.mid_key, self.mid, ca=False, days=days)

    def _cert(
        self,
        name: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
        *,
        ca: bool,
        days: tuple[int, int] = (-1, 365),
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if issuer is None else issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now + datetime.timedelta(days=days[0]))
            .not_valid_after(self.now + datetime.timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            ).add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name("team-a@example.com")]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())


def cert_pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def test_private_pki_signature() -> None:
    pki = Pki()
    key, leaf = pki.leaf()
    layer, annotations = sig_layer(
        lambda d: key.sign(d, ec.ECDSA(hashes.SHA256())),
        payload(),
        {"dev.sigstore.cosign/certificate": cert_pem(leaf)},
    )
    trust = TrustConfig(
        pki=(roots.pki_root("test", cert_pem(pki.root).encode(), cert_pem(pki.mid).encode()),)
    )
    roots_only = TrustConfig(pki=(roots.pki_root("test", cert_pem(pki.root).encode()),))

    good = verify_layer(
        mt.COSIGN_SIMPLESIGNING, layer, annotations, SUBJECT, trust, attachment_digest=ATTACHMENT
    )
    no_path = verify_layer(
        mt.COSIGN_SIMPLESIGNING,
        layer,
        annotations,
        SUBJECT,
        roots_only,
        attachment_digest=ATTACHMENT,
    )
    with_chain = verify_layer(
        mt.COSIGN_SIMPLESIGNING,
        layer,
        {**annotations, "dev.sigstore.cosign/chain": cert_pem(pki.mid)},
        SUBJECT,
        roots_only,
        attachment_digest=ATTACHMENT,
    )

    assert good.verified, good.reason
    assert (good.method, good.trust_root, good.identity) == (
        "pki",
        "pki:test",
        "team-a@example.com",
    )
    assert not no_path.verified
    assert no_path.reason.startswith("certificate chain does not lead to a trusted CA of pki:test")
    assert with_chain.verified, with_chain.reason


def test_expired_pki_certificate_without_a_log_fails() -> None:
    """Nothing vouches for when it was signed, so the certificate must be valid now."""
    pki = Pki()
    key, leaf = pki.leaf(days=(-30, -1))
    layer, annotations = sig_layer(
        lambda d: key.sign(d, ec.ECDSA(hashes.SHA256())),
        payload(),
        {"dev.sigstore.cosign/certificate": cert_pem(leaf)},
    )
    trust = TrustConfig(
        pki=(roots.pki_root("test", cert_pem(pki.root).encode(), cert_pem(pki.mid).encode()),)
    )

    result = verify_layer(
        mt.COSIGN_SIMPLESIGNING, layer, annotations, SUBJECT, trust, attachment_digest=ATTACHMENT
    )

    assert not result.verified
    assert "cert is not valid at validation time" in result.reason


def test_a_ca_certificate_cannot_sign() -> None:
    pki = Pki()
    layer, annotations = sig_layer(
        lambda d: pki.mid_key.sign(d, ec.ECDSA(hashes.SHA256())),
        payload(),
        {"dev.sigstore.cosign/certificate": cert_pem(pki.mid)},
    )
    trust = TrustConfig(pki=(roots.pki_root("test", cert_pem(pki.root).encode()),))

    result = verify_layer(
        mt.COSIGN_SIMPLESIGNING, layer, annotations, SUBJECT, trust, attachment_digest=ATTACHMENT
    )

    assert not result.verified
    assert "the signing certificate is a CA certificate" in result.reason
