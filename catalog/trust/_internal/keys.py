"""Public keys: loading, fingerprints, and checking a signature with every scheme a key allows.

cosign and Sigstore sign with ECDSA (P-256 with SHA-256; P-384 with SHA-384, though cosign's
Go verifier defaults to SHA-256 for every curve), RSA (PKCS#1 v1.5 or PSS, SHA-256) and Ed25519.
A signature does not say which scheme made it, so a key accepts any of the schemes it could have
been used with; all of them are sound, so trying each gives an attacker nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from catalog.trust.errors import TrustRootError, VerificationFailed

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_MIN_RSA_BITS = 2048
# The natural hash of each curve first; SHA-256 after it for cosign's default.
_CURVE_HASHES: dict[str, tuple[type[hashes.HashAlgorithm], ...]] = {
    "secp256r1": (hashes.SHA256,),
    "secp384r1": (hashes.SHA384, hashes.SHA256),
    "secp521r1": (hashes.SHA512, hashes.SHA256),
}


def load_pem_public_key(pem: bytes, what: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TrustRootError(f"{what}: not a PEM public key ({exc})") from None
    return checked_key(key, what)


def load_der_public_key(der: bytes, what: str) -> PublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TrustRootError(f"{what}: not a DER public key ({exc})") from None
    return checked_key(key, what)


def checked_key(key: object, what: str) -> PublicKey:
    """``key`` when it is a kind and size Sigstore signs with, else a :class:`TrustRootError`."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_HASHES:
            raise TrustRootError(f"{what}: unsupported elliptic curve {key.curve.name}")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise TrustRootError(f"{what}: RSA key of {key.key_size} bits is too small")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise TrustRootError(f"{what}: unsupported key type {type(key).__name__}")


def certificate_key(cert: x509.Certificate) -> PublicKey:
    """The signing certificate's key; :class:`VerificationFailed` when unusable or malformed."""
    try:
        return checked_key(cert.public_key(), "the signing certificate")
    except (ValueError, UnsupportedAlgorithm, TrustRootError) as exc:
        raise VerificationFailed(f"unusable signing certificate key ({exc})") from None


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: PublicKey) -> str:
    """SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex (also a Rekor log ID)."""
    return hashlib.sha256(spki_der(key)).hexdigest()


def describe(key: PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return "Ed25519"


def signs(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature over ``data`` under any scheme it allows."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return _holds(partial(key.verify, signature, data))
    if isinstance(key, ec.EllipticCurvePublicKey):
        return any(
            _holds(partial(key.verify, signature, data, ec.ECDSA(algorithm())))
            for algorithm in _CURVE_HASHES[key.curve.name]
        )
    return any(
        _holds(partial(key.verify, signature, data, scheme, hashes.SHA256()))
        for scheme in _rsa_paddings()
    )


def signs_digest(key: PublicKey, signature: bytes, sha256: bytes) -> bool:
    """Like :func:`signs` when only the SHA-256 of the data is known (a hashedrekord artifact)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        # Pure Ed25519 hashes the message itself: a digest is not enough to check it.
        raise VerificationFailed(
            "an Ed25519 signature can only be checked against the artifact itself"
        )
    prehashed = Prehashed(hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _holds(partial(key.verify, signature, sha256, ec.ECDSA(prehashed)))
    return any(
        _holds(partial(key.verify, signature, sha256, scheme, prehashed))
        for scheme in _rsa_paddings()
    )


def _rsa_paddings() -> tuple[padding.AsymmetricPadding, ...]:
    return (
        padding.PKCS1v15(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
    )


def _holds(check: Callable[[], None]) -> bool:
    try:
        check()
    except InvalidSignature:
        return False
    return True
