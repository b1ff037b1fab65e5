"""Sigstore bundles v0.1 to v0.3 (sigstore/protobuf-specs, proto3 JSON) → ``SignatureRecord``.

Only decoding: a bundle that decodes may still fail verification (the trust layer's job).
"""

from __future__ import annotations

from typing import Any

from catalog.formats import _json as j
from catalog.formats import certs, dsse, intoto, payload_digests, rekor
from catalog.formats._base64 import b64decode
from catalog.formats.records import SignatureRecord
from catalog.oci import mediatypes as mt

V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"  # may lack inclusion proofs
MEDIA_TYPES = frozenset(
    {
        V01,
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        mt.SIGSTORE_BUNDLE_V03,
    }
)
# protobuf-specs HashAlgorithm names of the digests an OCI manifest digest can use.
_HASH_ALGORITHMS = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}
_MAX_ENTRIES = 64


def decode_bundle(data: bytes) -> SignatureRecord:
    bundle = j.as_object(j.load(data, "Sigstore bundle"), "$")
    media_type = j.req_str(bundle, "mediaType", "$")
    if media_type not in MEDIA_TYPES:
        j.fail("$.mediaType", f"unknown Sigstore bundle version {media_type!r}")
    material = j.req_object(bundle, "verificationMaterial", "$")
    leaf, chain, hint = _keys(material, "$.verificationMaterial")
    tlog = tuple(
        rekor.from_bundle_entry(item, f"$.verificationMaterial.tlogEntries[{i}]")
        for i, item in enumerate(_bounded(material, "tlogEntries", "$.verificationMaterial"))
    )
    timestamps = _timestamps(material)
    has_message = "messageSignature" in bundle
    if has_message == ("dsseEnvelope" in bundle):
        j.fail("$", "a bundle holds exactly one of messageSignature and dsseEnvelope")
    if has_message:
        message = j.req_object(bundle, "messageSignature", "$")
        return SignatureRecord(
            format="sigstore-bundle",
            media_type=media_type,
            signature=_signature(message, "$.messageSignature"),
            **certs.signer_fields(leaf),
            chain_pem=chain,
            key_id=hint,
            tlog_entries=tlog,
            rfc3161_timestamps=timestamps,
            signed_digests=_message_digest(message, "$.messageSignature"),
        )
    envelope = dsse.envelope_from_json(bundle["dsseEnvelope"], "$.dsseEnvelope")
    statement = (
        intoto.decode_statement(envelope.payload)
        if envelope.payload_type == intoto.PAYLOAD_TYPE
        else None
    )
    return SignatureRecord(
        format="sigstore-bundle",
        media_type=media_type,
        payload=envelope.payload,
        payload_type=envelope.payload_type,
        signature=envelope.signatures[0].sig,
        **certs.signer_fields(leaf),
        chain_pem=chain,
        key_id=hint or envelope.signatures[0].keyid,
        tlog_entries=tlog,
        rfc3161_timestamps=timestamps,
        signed_digests=intoto.signed_digests(statement.subjects) if statement else (),
        statement=statement,
    )


def _keys(
    material: dict[str, Any], path: str
) -> tuple[certs.CertificateInfo | None, tuple[str, ...], str | None]:
    """(leaf certificate, the rest of the chain as PEM, public-key hint)."""
    certificate = j.opt_object(material, "certificate", path)
    if certificate is not None:
        where = f"{path}.certificate"
        return certs.from_der(_raw_bytes(certificate, where), where), (), None
    chain = j.opt_object(material, "x509CertificateChain", path)
    if chain is not None:
        where = f"{path}.x509CertificateChain.certificates"
        items = _bounded(chain, "certificates", f"{path}.x509CertificateChain")
        if not items:
            j.fail(where, "the certificate chain is empty")
        ders = [
            _raw_bytes(j.as_object(c, f"{where}[{i}]"), f"{where}[{i}]")
            for i, c in enumerate(items)
        ]
        return certs.from_der(ders[0], f"{where}[0]"), certs.chain_from_der(ders[1:], where), None
    public_key = j.opt_object(material, "publicKey", path)
    if public_key is not None:
        return None, (), j.opt_str(public_key, "hint", f"{path}.publicKey")
    j.fail(path, "no certificate, certificate chain or public key")


def _raw_bytes(obj: dict[str, Any], path: str) -> bytes:
    return b64decode(j.req_str(obj, "rawBytes", path, max_len=2**20), f"{path}.rawBytes")


def _bounded(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    items = j.opt_list(obj, key, path)
    if len(items) > _MAX_ENTRIES:
        j.fail(f"{path}.{key}", f"more than {_MAX_ENTRIES} entries")
    return items


def _timestamps(material: dict[str, Any]) -> tuple[bytes, ...]:
    path = "$.verificationMaterial.timestampVerificationData"
    data = j.opt_object(material, "timestampVerificationData", "$.verificationMaterial") or {}
    result = []
    for i, item in enumerate(_bounded(data, "rfc3161Timestamps", path)):
        where = f"{path}.rfc3161Timestamps[{i}]"
        signed = j.req_str(j.as_object(item, where), "signedTimestamp", where, max_len=2**20)
        result.append(b64decode(signed, f"{where}.signedTimestamp"))
    return tuple(result)


def _signature(message: dict[str, Any], path: str) -> bytes:
    return b64decode(j.req_str(message, "signature", path, max_len=2**20), f"{path}.signature")


def _message_digest(message: dict[str, Any], path: str) -> tuple[str, ...]:
    digest = j.opt_object(message, "messageDigest", path)
    if digest is None:
        return ()
    where = f"{path}.messageDigest"
    algorithm = _HASH_ALGORITHMS.get(j.req_str(digest, "algorithm", where))
    value = b64decode(j.req_str(digest, "digest", where), f"{where}.digest")
    found = None if algorithm is None else payload_digests.digest(algorithm, value.hex())
    return () if found is None else (found,)
