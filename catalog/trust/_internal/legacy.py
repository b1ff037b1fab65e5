"""cosign's legacy tag-scheme layers: ``.sig`` simple signing and ``.att`` DSSE attestations.

The layer blob is what was signed (the simple-signing payload, or the DSSE envelope); the
certificate, chain, Rekor bundle (SET) and timestamp ride in the layer's annotations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from catalog.errors import FormatError
from catalog.formats import cosign, dsse
from catalog.formats.records import SignatureRecord
from catalog.oci import mediatypes as mt
from catalog.trust._internal import methods, tlog
from catalog.trust._internal.outcome import Outcome
from catalog.trust._internal.signed import Artifact, Envelope, Signed
from catalog.trust.errors import VerificationFailed
from catalog.trust.roots import TrustConfig

MEDIA_TYPES = frozenset({mt.COSIGN_SIMPLESIGNING, mt.DSSE_ENVELOPE})


def decode(
    media_type: str, layer: bytes, annotations: Mapping[str, str]
) -> tuple[SignatureRecord, Signed]:
    try:
        if media_type == mt.COSIGN_SIMPLESIGNING:
            record = cosign.decode_cosign_signature(layer, annotations)
            assert record.signature is not None  # the decoder requires it
            signed: Signed = Artifact(hashlib.sha256(layer).digest(), layer, record.signature)
            return record, signed
        record = cosign.decode_cosign_attestation(layer, annotations)
        envelope = dsse.decode_envelope(layer)
    except FormatError as exc:
        raise VerificationFailed(f"not a valid cosign signature layer: {exc}") from None
    return record, Envelope(
        envelope.payload_type, envelope.payload, tuple(s.sig for s in envelope.signatures)
    )


def verify(record: SignatureRecord, signed: Signed, trust: TrustConfig) -> Outcome:
    return methods.verify_signed(
        signed,
        record.certificate_pem,
        record.chain_pem,
        [tlog.from_record(entry) for entry in record.tlog_entries],
        record.rfc3161_timestamps,
        trust,
        require_proof=False,  # cosign's bundle annotation holds a SET, never an inclusion proof
    )
