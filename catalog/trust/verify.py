"""Verify one signature layer, offline, against a trust configuration: the entry point.

Works from what the store keeps for each signature layer (its media type, exact bytes and
annotations) and the digest of the image being judged. Never raises for a bad signature: the
result says ``verified=False`` and why. Raises only for a caller's mistake (a malformed subject
digest) or bad trust material.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from catalog.formats import bundle as bundle_format
from catalog.formats.records import SignatureRecord
from catalog.oci import mediatypes as mt
from catalog.trust._internal import bundles, legacy, subjects
from catalog.trust._internal.outcome import Outcome
from catalog.trust.errors import VerificationFailed
from catalog.trust.roots import TrustConfig
from catalog.trust.signatures import Method, VerifiedSignature


def verify_layer(
    layer_media_type: str,
    layer: bytes,
    annotations: Mapping[str, str],
    subject_digest: str,
    trust: TrustConfig,
    *,
    attachment_digest: str,
    layer_digest: str | None = None,
) -> VerifiedSignature:
    """Whether ``layer`` is a valid signature of ``subject_digest`` under ``trust``.

    ``attachment_digest`` is the signature manifest holding the layer; ``layer_digest`` defaults
    to the layer's SHA-256.
    """
    subject = subjects.normalize(subject_digest)
    checked = _check(layer_media_type, layer, annotations, subject, trust, artifact=None)
    return _result(
        checked,
        subject,
        trust,
        attachment_digest=attachment_digest,
        layer_digest=layer_digest or f"sha256:{hashlib.sha256(layer).hexdigest()}",
    )


def verify_bundle(
    bundle: bytes, subject_digest: str, trust: TrustConfig, *, artifact: bytes | None = None
) -> VerifiedSignature:
    """A Sigstore bundle file over an artifact (the ``verify-bundle`` command's question).

    ``artifact``, when given, is the signed file itself (``subject_digest`` its SHA-256): needed
    only for Ed25519 key signatures, which cannot be checked from a digest.
    """
    subject = subjects.normalize(subject_digest)
    # Any bundle media type will do: a bundle names its own version inside.
    checked = _check(mt.SIGSTORE_BUNDLE_V03, bundle, {}, subject, trust, artifact=artifact)
    digest = f"sha256:{hashlib.sha256(bundle).hexdigest()}"
    return _result(checked, subject, trust, attachment_digest=digest, layer_digest=digest)


@dataclass(frozen=True, slots=True)
class _Checked:
    record: SignatureRecord | None
    outcome: Outcome | None
    failure: VerificationFailed | None


def _check(
    media_type: str,
    layer: bytes,
    annotations: Mapping[str, str],
    subject: str,
    trust: TrustConfig,
    *,
    artifact: bytes | None,
) -> _Checked:
    record: SignatureRecord | None = None
    try:
        if media_type in legacy.MEDIA_TYPES:
            record, signed = legacy.decode(media_type, layer, annotations)
            subjects.require_subject(record.signed_digests, subject)
            return _Checked(record, legacy.verify(record, signed, trust), None)
        if media_type in bundle_format.MEDIA_TYPES:
            record = bundles.decode(layer)
            bundles.check_subject(record, subject)
            return _Checked(record, bundles.verify(layer, record, subject, trust, artifact), None)
        raise VerificationFailed(
            f"layer media type {media_type!r} is not a signature format we verify"
        )
    except VerificationFailed as exc:
        return _Checked(record, None, exc)


def _result(
    checked: _Checked,
    subject: str,
    trust: TrustConfig,
    *,
    attachment_digest: str,
    layer_digest: str,
) -> VerifiedSignature:
    record, outcome = checked.record, checked.outcome
    method: Method | None = outcome.method if outcome else _failed_method(checked)
    entry = outcome.log_entry if outcome else None
    signed_digests = record.signed_digests if record else ()
    if outcome and not signed_digests:
        signed_digests = (subject,)  # a message signature verified over the subject itself
    return VerifiedSignature(
        attachment_digest=attachment_digest,
        layer_digest=layer_digest,
        verified=outcome is not None,
        reason=f"verified: {outcome.summary}" if outcome else str(checked.failure),
        method=method,
        trust_root=outcome.trust_root if outcome else None,
        trust_version=trust.version,
        identity=record.identity if record else None,
        issuer=record.issuer if record else None,
        extensions=dict(record.extensions) if record else {},
        key_fingerprint=outcome.key_fingerprint if outcome else None,
        log_index=entry.log_index if entry else None,
        log_id=entry.log_id if entry else None,
        integrated_time=entry.integrated_time if entry else None,
        predicate_type=record.statement.predicate_type if record and record.statement else None,
        signed_digests=signed_digests,
    )


def _failed_method(checked: _Checked) -> Method | None:
    return checked.failure.method if checked.failure else None
