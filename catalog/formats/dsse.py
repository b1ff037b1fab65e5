"""DSSE envelopes (secure-systems-lab/dsse v1): parsing and the pre-authentication encoding."""

from __future__ import annotations

from typing import Any

from catalog.formats import _json as j
from catalog.formats._base64 import b64decode
from catalog.formats.records import DsseEnvelope, DsseSignature

_PAYLOAD_MAX = 2**31  # base64 characters; the payload may be a whole SBOM


def pae(payload_type: str, payload: bytes) -> bytes:
    """PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body: what DSSE signs."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def decode_envelope(data: bytes) -> DsseEnvelope:
    return envelope_from_json(j.load(data, "DSSE envelope"), "$")


def decode_envelopes_jsonl(data: bytes) -> tuple[DsseEnvelope, ...]:
    """One envelope per line, as ``cosign download attestation`` and trivy write them."""
    envelopes = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            where = f"line {number}"
            envelopes.append(envelope_from_json(j.load(line, where), where))
    if not envelopes:
        j.fail("DSSE JSON lines", "no envelope")
    return tuple(envelopes)


def envelope_from_json(value: Any, path: str) -> DsseEnvelope:
    envelope = j.as_object(value, path)
    payload = b64decode(
        j.req_str(envelope, "payload", path, max_len=_PAYLOAD_MAX), path + ".payload"
    )
    signatures = j.opt_list(envelope, "signatures", path)
    if not signatures:
        j.fail(path, "envelope has no signatures")
    return DsseEnvelope(
        payload_type=j.req_str(envelope, "payloadType", path),
        payload=payload,
        signatures=tuple(
            _signature(item, f"{path}.signatures[{i}]") for i, item in enumerate(signatures)
        ),
    )


def _signature(value: Any, path: str) -> DsseSignature:
    signature = j.as_object(value, path)
    keyid = j.opt_str(signature, "keyid", path)
    return DsseSignature(
        sig=b64decode(j.req_str(signature, "sig", path, max_len=2**20), path + ".sig"),
        keyid=keyid or None,
    )
