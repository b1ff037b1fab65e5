"""Does the transparency-log entry record *this* signature? (CVE-2022-36056 and its kin.)

A SET or inclusion proof only proves that some entry is in the log; the entry body must then
record the same artifact hash (or DSSE payload hash), the same signature and the same verifier
(certificate or public key), or a valid log entry could vouch for a different signature.
Rekor v1 kinds: ``hashedrekord`` 0.0.1, ``dsse`` 0.0.1 and ``intoto`` 0.0.2.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from catalog.oci import boundedjson
from catalog.trust._internal import keys
from catalog.trust._internal.signed import Artifact, Envelope, Signed
from catalog.trust._internal.tlog import LogEntry
from catalog.trust.errors import VerificationFailed

Verifier = x509.Certificate | keys.PublicKey
_MAX_SIGNATURES = 64


def check_body(entry: LogEntry, signed: Signed, signature: bytes, verifier: Verifier) -> None:
    """``entry``'s body records ``signature`` over ``signed`` by ``verifier``."""
    if entry.body is None:
        raise VerificationFailed("the transparency-log entry has no body")
    try:
        # A Rekor body is one small object; bounded so nesting cannot raise RecursionError.
        body = boundedjson.loads(entry.body, max_depth=32, max_values=10_000)
        kind = (body.get("kind"), body.get("apiVersion"))
        check = _CHECKS.get(kind)
        if check is None:
            raise VerificationFailed(f"unsupported transparency-log entry kind {kind[0]} {kind[1]}")
        check(body["spec"], signed, signature, verifier)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise VerificationFailed(
            f"malformed transparency-log entry body ({type(exc).__name__}: {exc})"
        ) from None


def _hashedrekord(spec: Any, signed: Signed, signature: bytes, verifier: Verifier) -> None:
    if not isinstance(signed, Artifact):
        raise VerificationFailed(
            "a hashedrekord entry records an artifact signature, not a DSSE envelope"
        )
    digest = spec["data"]["hash"]
    if digest["algorithm"] != "sha256" or digest["value"] != signed.sha256.hex():
        raise VerificationFailed("the transparency-log entry records another artifact hash")
    recorded = spec["signature"]
    if base64.b64decode(recorded["content"], validate=True) != signature:
        raise VerificationFailed("the transparency-log entry records another signature")
    _same_verifier(recorded["publicKey"]["content"], verifier)


def _dsse(spec: Any, signed: Signed, signature: bytes, verifier: Verifier) -> None:
    envelope = _envelope(signed)
    _payload_hash(spec["payloadHash"], envelope)
    for item in _bounded(spec["signatures"]):
        if base64.b64decode(item["signature"], validate=True) == signature:
            _same_verifier(item["verifier"], verifier)
            return
    raise VerificationFailed("the transparency-log entry does not record the envelope's signature")


def _intoto(spec: Any, signed: Signed, signature: bytes, verifier: Verifier) -> None:
    envelope = _envelope(signed)
    content = spec["content"]
    _payload_hash(content["payloadHash"], envelope)
    recorded = content["envelope"]
    if recorded.get("payloadType") != envelope.payload_type:
        raise VerificationFailed("the transparency-log entry records another DSSE payload type")
    payload = recorded.get("payload")
    if payload is not None and not _encodes(payload, envelope.payload):
        raise VerificationFailed("the transparency-log entry records another DSSE payload")
    for item in _bounded(recorded["signatures"]):
        if _encodes(item["sig"], signature):
            _same_verifier(item["publicKey"], verifier)
            return
    raise VerificationFailed("the transparency-log entry does not record the envelope's signature")


_CHECKS: dict[tuple[Any, Any], Callable[[Any, Signed, bytes, Verifier], None]] = {
    ("hashedrekord", "0.0.1"): _hashedrekord,
    ("dsse", "0.0.1"): _dsse,
    ("intoto", "0.0.2"): _intoto,
}


def _envelope(signed: Signed) -> Envelope:
    if not isinstance(signed, Envelope):
        raise VerificationFailed("a DSSE log entry cannot record a plain artifact signature")
    return signed


def _payload_hash(recorded: Any, envelope: Envelope) -> None:
    expected = hashlib.sha256(envelope.payload).hexdigest()
    if recorded["algorithm"] != "sha256" or recorded["value"] != expected:
        raise VerificationFailed("the transparency-log entry records another DSSE payload hash")


def _bounded(items: Any) -> list[Any]:
    if not isinstance(items, list) or len(items) > _MAX_SIGNATURES:
        raise ValueError("signatures must be a list of at most 64")
    return items


def _encodes(text: str, value: bytes) -> bool:
    """Whether ``text`` is ``value`` in base64, or base64 twice: Rekor's intoto 0.0.2 entries
    have been written both ways. Comparing with a known value keeps the leniency harmless."""
    once = base64.b64decode(text, validate=True)
    if once == value:
        return True
    try:
        return base64.b64decode(once, validate=True) == value
    except ValueError:
        return False


def _same_verifier(encoded: str, verifier: Verifier) -> None:
    """The entry's verifier (base64 of a PEM certificate or public key) is ``verifier``."""
    pem = base64.b64decode(encoded, validate=True)
    if isinstance(verifier, x509.Certificate):
        if b"CERTIFICATE" not in pem or x509.load_pem_x509_certificate(pem).public_bytes(
            Encoding.DER
        ) != verifier.public_bytes(Encoding.DER):
            raise VerificationFailed(
                "the transparency-log entry records another signing certificate"
            )
        return
    recorded = (
        x509.load_pem_x509_certificate(pem).public_key()
        if b"CERTIFICATE" in pem
        else load_pem_public_key(pem)
    )
    if recorded.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != keys.spki_der(
        verifier
    ):
        raise VerificationFailed("the transparency-log entry records another public key")
