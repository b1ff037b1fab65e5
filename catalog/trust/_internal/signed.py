"""What a signature covers: an artifact (hashedrekord, cosign simple signing) or a DSSE envelope."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.formats.dsse import pae
from catalog.trust._internal import keys
from catalog.trust.errors import VerificationFailed


@dataclass(frozen=True, slots=True)
class Artifact:
    """A signature over an artifact; ``data`` is ``None`` when only its digest is known."""

    sha256: bytes
    data: bytes | None
    signature: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope: each signature covers PAE(payloadType, payload)."""

    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]


Signed = Artifact | Envelope


def signature_by(signed: Signed, key: keys.PublicKey) -> bytes | None:
    """The signature ``key`` made over ``signed``, or ``None`` when it made none of them."""
    if isinstance(signed, Artifact):
        if signed.data is not None:
            holds = keys.signs(key, signed.signature, signed.data)
        else:
            holds = keys.signs_digest(key, signed.signature, signed.sha256)
        return signed.signature if holds else None
    message = pae(signed.payload_type, signed.payload)
    return next((sig for sig in signed.signatures if keys.signs(key, sig, message)), None)


def require_signature_by(signed: Signed, key: keys.PublicKey, whose: str) -> bytes:
    found = signature_by(signed, key)
    if found is None:
        if isinstance(signed, Artifact):
            raise VerificationFailed(f"signature does not verify with {whose}")
        raise VerificationFailed(f"no signature of the DSSE envelope verifies with {whose}")
    return found


def signatures(signed: Signed) -> tuple[bytes, ...]:
    return (signed.signature,) if isinstance(signed, Artifact) else signed.signatures
