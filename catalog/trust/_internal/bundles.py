"""Sigstore bundles v0.1 to v0.3, including cosign's new OCI format (a v0.3 bundle as a referrer).

Certificate-signed bundles go through sigstore-python's ``Verifier`` with the trusted root of
the log that holds the entry. Two kinds it refuses are checked here with the same steps:
bundles signed with a public key (sigstore-python issue #1244) and ``intoto`` 0.0.2 log entries.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from catalog.errors import FormatError
from catalog.formats import bundle as bundle_format
from catalog.formats import dsse, intoto
from catalog.formats.records import SignatureRecord
from catalog.trust._internal import methods, subjects, tlog
from catalog.trust._internal.outcome import Outcome
from catalog.trust._internal.signed import Artifact, Envelope, Signed
from catalog.trust._internal.tlog import LogEntry
from catalog.trust.errors import VerificationFailed
from catalog.trust.roots import TrustConfig

# Log entry kinds sigstore-python cannot verify, which we check ourselves.
_OUR_KINDS = frozenset({("intoto", "0.0.2")})


def decode(data: bytes) -> SignatureRecord:
    try:
        return bundle_format.decode_bundle(data)
    except FormatError as exc:
        raise VerificationFailed(f"not a valid Sigstore bundle: {exc}") from None


def check_subject(record: SignatureRecord, subject: str) -> None:
    """A DSSE statement must name ``subject``. A message signature is checked against the
    subject's digest itself; its ``messageDigest`` is only a hint, but one naming another
    artifact is a plain mismatch, reported as such."""
    if record.payload_type is not None or record.signed_digests:
        subjects.require_subject(record.signed_digests, subject)


def verify(
    data: bytes,
    record: SignatureRecord,
    subject: str,
    trust: TrustConfig,
    artifact: bytes | None = None,
) -> Outcome:
    """``artifact``: the signed bytes when known (the CLI); a registry only knows ``subject``."""
    raw = json.loads(data)  # decode() parsed it already
    signed = _signed(raw, record, subject, artifact)
    log_entries = _entries(raw, record)
    if record.certificate_pem is None or any(
        (e.kind, e.version) in _OUR_KINDS for e in log_entries
    ):
        return _ourselves(record, signed, log_entries, trust)
    return _with_sigstore(data, signed, log_entries, trust)


def verify_ourselves(
    data: bytes,
    record: SignatureRecord,
    subject: str,
    trust: TrustConfig,
    artifact: bytes | None = None,
) -> Outcome:
    """Like :func:`verify` but never through sigstore-python: the path for what it refuses,
    exposed so tests can hold it to the same conformance cases as sigstore-python."""
    raw = json.loads(data)
    return _ourselves(record, _signed(raw, record, subject, artifact), _entries(raw, record), trust)


def _ourselves(
    record: SignatureRecord, signed: Signed, log_entries: list[LogEntry], trust: TrustConfig
) -> Outcome:
    return methods.verify_signed(
        signed,
        record.certificate_pem,
        record.chain_pem,
        log_entries,
        record.rfc3161_timestamps,
        trust,
        # v0.1 bundles may carry only a SET; later versions must prove inclusion.
        require_proof=record.media_type != bundle_format.V01,
    )


def _signed(
    raw: dict[str, Any], record: SignatureRecord, subject: str, artifact: bytes | None
) -> Signed:
    if record.payload_type is not None:
        envelope = dsse.envelope_from_json(raw["dsseEnvelope"], "$.dsseEnvelope")
        return Envelope(
            envelope.payload_type, envelope.payload, tuple(s.sig for s in envelope.signatures)
        )
    algorithm, _, hex_digest = subject.partition(":")
    if algorithm != "sha256":
        raise VerificationFailed(
            f"a message-signature bundle signs a SHA-256 digest, not {algorithm}"
        )
    if artifact is not None and hashlib.sha256(artifact).hexdigest() != hex_digest:
        raise VerificationFailed(f"the artifact given does not have the digest {subject}")
    assert record.signature is not None  # the decoder requires it
    return Artifact(bytes.fromhex(hex_digest), artifact, record.signature)


def _entries(raw: dict[str, Any], record: SignatureRecord) -> list[LogEntry]:
    items = raw["verificationMaterial"].get("tlogEntries") or []
    return [
        tlog.from_record(
            entry,
            None
            if item.get("inclusionProof") is None
            else tlog.proof_from_json(item["inclusionProof"]),
        )
        for entry, item in zip(record.tlog_entries, items, strict=True)
    ]


def _with_sigstore(
    data: bytes, signed: Signed, log_entries: list[LogEntry], trust: TrustConfig
) -> Outcome:
    from catalog.trust._internal import sigstore_api  # lazily: importing sigstore costs ~300 ms

    if len(log_entries) != 1:
        raise VerificationFailed(
            f"expected one transparency-log entry, found {len(log_entries)}", "keyless"
        )
    entry = log_entries[0]
    try:
        candidates = tlog.find_log(entry, trust.sigstore)
    except VerificationFailed as exc:
        raise VerificationFailed(exc.reason, "keyless") from None
    first: VerificationFailed | None = None
    for root, _log in candidates:
        try:
            if isinstance(signed, Envelope):
                payload_type, payload = sigstore_api.verify_dsse(data, root)
                if payload_type != intoto.PAYLOAD_TYPE or payload != signed.payload:
                    raise VerificationFailed(
                        "the verified DSSE payload is not the in-toto statement read"
                    )
            else:
                sigstore_api.verify_message(data, root, signed.sha256)
        except VerificationFailed as exc:
            first = first or exc
            continue
        return Outcome(
            method="keyless",
            trust_root=root.id,
            summary=(
                f"sigstore-python verified the bundle against {root.id}: certificate chain, "
                f"SCT, Rekor entry {entry.log_index} and signature"
            ),
            log_entry=entry,
        )
    assert first is not None
    raise VerificationFailed(first.reason, "keyless")
