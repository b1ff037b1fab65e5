"""cosign's legacy tag-scheme layers: ``.sig`` simple-signing layers and ``.att`` DSSE layers.

The layer blob is the signed content; the signature, certificate, chain, Rekor bundle and
timestamp ride in the layer's annotations (sigstore/cosign ``specs/SIGNATURE_SPEC.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from catalog.formats import _json as j
from catalog.formats import certs, dsse, intoto, payload_digests, rekor
from catalog.formats._base64 import b64decode
from catalog.formats.records import SignatureRecord, StatementRecord, TlogEntry
from catalog.oci import mediatypes as mt

SIGNATURE = "dev.cosignproject.cosign/signature"
CERTIFICATE = "dev.sigstore.cosign/certificate"
CHAIN = "dev.sigstore.cosign/chain"
BUNDLE = "dev.sigstore.cosign/bundle"
RFC3161_TIMESTAMP = "dev.sigstore.cosign/rfc3161timestamp"
PREDICATE_TYPE = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"
_PEM_MAX = 1024 * 1024


def decode_cosign_signature(payload: bytes, annotations: Mapping[str, str]) -> SignatureRecord:
    """A ``.sig`` layer: ``payload`` is the simple-signing JSON blob the signature covers."""
    signature_b64 = _annotation(annotations, SIGNATURE)
    if not signature_b64:
        j.fail(f"annotation {SIGNATURE}", "missing: a .sig layer must carry its signature")
    critical = j.req_object(j.as_object(j.load(payload, "cosign payload"), "$"), "critical", "$")
    kind = j.req_str(critical, "type", "$.critical")
    if kind != SIGNATURE_TYPE:
        j.fail("$.critical.type", f"not a cosign signature payload: {kind!r}")
    image = j.req_object(critical, "image", "$.critical")
    text = j.req_str(image, "docker-manifest-digest", "$.critical.image")
    manifest_digest = payload_digests.parse(text)
    if manifest_digest is None:
        j.fail("$.critical.image.docker-manifest-digest", f"not a digest: {text!r}")
    identity = j.opt_object(critical, "identity", "$.critical") or {}
    material = _material(annotations)
    return SignatureRecord(
        format="cosign",
        media_type=mt.COSIGN_SIMPLESIGNING,
        payload=payload,
        signature=b64decode(signature_b64, f"annotation {SIGNATURE}"),
        **certs.signer_fields(material.certificate),
        chain_pem=material.chain,
        tlog_entries=material.tlog,
        rfc3161_timestamps=material.timestamps,
        signed_digests=(manifest_digest,),
        docker_reference=j.opt_str(identity, "docker-reference", "$.critical.identity"),
    )


def decode_cosign_attestation(envelope: bytes, annotations: Mapping[str, str]) -> SignatureRecord:
    """An ``.att`` layer: a DSSE envelope; its signature is inside, the annotation is empty."""
    parsed = dsse.decode_envelope(envelope)
    statement = _statement(parsed.payload_type, parsed.payload)
    material = _material(annotations)
    first = parsed.signatures[0]
    return SignatureRecord(
        format="cosign",
        media_type=mt.DSSE_ENVELOPE,
        payload=parsed.payload,
        payload_type=parsed.payload_type,
        signature=first.sig,
        **certs.signer_fields(material.certificate),
        chain_pem=material.chain,
        key_id=first.keyid,
        tlog_entries=material.tlog,
        rfc3161_timestamps=material.timestamps,
        signed_digests=intoto.signed_digests(statement.subjects) if statement else (),
        statement=statement,
    )


def _statement(payload_type: str, payload: bytes) -> StatementRecord | None:
    return intoto.decode_statement(payload) if payload_type == intoto.PAYLOAD_TYPE else None


@dataclass(frozen=True, slots=True)
class _Material:
    certificate: certs.CertificateInfo | None
    chain: tuple[str, ...]
    tlog: tuple[TlogEntry, ...]
    timestamps: tuple[bytes, ...]


def _material(annotations: Mapping[str, str]) -> _Material:
    certificate = _annotation(annotations, CERTIFICATE, max_len=_PEM_MAX)
    chain = _annotation(annotations, CHAIN, max_len=_PEM_MAX)
    bundle = _annotation(annotations, BUNDLE, max_len=2**31)
    timestamp = _annotation(annotations, RFC3161_TIMESTAMP, max_len=_PEM_MAX)
    return _Material(
        certificate=certs.from_pem(certificate, f"annotation {CERTIFICATE}")
        if certificate
        else None,
        chain=certs.chain_from_pem(chain, f"annotation {CHAIN}") if chain else (),
        tlog=(rekor.from_cosign_annotation(bundle, f"annotation {BUNDLE}"),) if bundle else (),
        timestamps=(_timestamp(timestamp),) if timestamp else (),
    )


def _timestamp(text: str) -> bytes:
    where = f"annotation {RFC3161_TIMESTAMP}"
    value = j.as_object(j.load(text, where), where)
    return b64decode(j.req_str(value, "SignedRFC3161Timestamp", where, max_len=2**20), where)


def _annotation(annotations: Mapping[str, str], key: str, *, max_len: int = 2**20) -> str | None:
    value = annotations.get(key)
    return None if value is None else j.as_text(value, f"annotation {key}", max_len=max_len)
