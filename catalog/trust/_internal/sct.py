"""The certificate-transparency promise embedded in a Fulcio certificate (RFC 6962 §3.2).

Fulcio logs every certificate to a CT log before issuing it and embeds the log's signed
certificate timestamp (SCT); checking it proves the certificate was publicly logged, so a
mis-issued one would be visible. The SCT signs the precertificate: the TBS certificate without
the SCT extension, bound to the issuer by the hash of the issuer's public key.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.certificate_transparency import (
    LogEntryType,
    SignedCertificateTimestamp,
    Version,
)

from catalog.trust._internal import keys
from catalog.trust._internal.sigstore_root import SigstoreRoot
from catalog.trust._internal.timefmt import iso
from catalog.trust.errors import VerificationFailed

_EPOCH = datetime(1970, 1, 1)
_CERTIFICATE_TIMESTAMP = 0  # SignatureType.certificate_timestamp
_PRECERT_ENTRY = 1


def verify_embedded_sct(
    leaf: x509.Certificate, issuer: x509.Certificate, root: SigstoreRoot
) -> None:
    """At least one embedded SCT verifies against a CT log key of ``root``."""
    try:
        extension = leaf.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        )
    except x509.ExtensionNotFound:
        raise VerificationFailed(
            "the certificate has no embedded SCT (it was not CT-logged)"
        ) from None
    problems = []
    for sct in extension.value:
        problem = _check(sct, leaf, issuer, root)
        if problem is None:
            return
        problems.append(problem)
    raise VerificationFailed(
        f"SCT does not verify against any CT log of {root.id}: {'; '.join(problems)}"
    )


def _check(
    sct: SignedCertificateTimestamp,
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    root: SigstoreRoot,
) -> str | None:
    """``None`` when the SCT holds, else what is wrong with it."""
    log_id = sct.log_id.hex()
    log = root.ct_log(log_id)
    if log is None:
        return f"SCT is from unknown CT log {log_id}"
    if sct.version != Version.v1 or sct.entry_type != LogEntryType.PRE_CERTIFICATE:
        return "SCT is not a v1 precertificate timestamp"
    if not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
        return f"SCT uses {sct.signature_hash_algorithm.name}, not SHA-256"
    issued = sct.timestamp.replace(tzinfo=UTC)
    if not log.validity.contains(issued):
        return f"CT log {log.url} was not trusted at {iso(issued)}"
    if not keys.signs(log.key, sct.signature, _signed_data(sct, leaf, issuer)):
        return f"SCT signature does not verify with the key of CT log {log.url}"
    return None


def _signed_data(
    sct: SignedCertificateTimestamp, leaf: x509.Certificate, issuer: x509.Certificate
) -> bytes:
    # Fulcio signs precertificates with its issuing CA directly, never with a dedicated
    # precertificate-signing certificate, so the issuer key hash is the issuing CA's.
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).digest()
    tbs = leaf.tbs_precertificate_bytes
    milliseconds = (sct.timestamp - _EPOCH) // timedelta(milliseconds=1)
    extensions = sct.extension_bytes
    return b"".join(
        [
            struct.pack(">BBQH", 0, _CERTIFICATE_TIMESTAMP, milliseconds, _PRECERT_ENTRY),
            issuer_key_hash,
            len(tbs).to_bytes(3, "big"),
            tbs,
            struct.pack(">H", len(extensions)),
            extensions,
        ]
    )
