"""Notary Project (notation) signatures: what the envelope says, not whether it holds.

JWS envelopes (notaryproject ``specs/signature-envelope-jws.md``) are decoded: protected header,
payload, ``x5c`` chain. COSE envelopes yield only what the manifest says (media type and chain
thumbprints): reading CBOR is left to the verifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from catalog.formats import _json as j
from catalog.formats import certs, payload_digests
from catalog.formats._base64 import b64decode
from catalog.formats.records import NotationDetails, SignatureRecord
from catalog.oci import mediatypes as mt

JWS = mt.NOTATION_JWS
COSE = mt.NOTATION_COSE
THUMBPRINTS = "io.cncf.notary.x509chain.thumbprint#S256"
_SCHEME = "io.cncf.notary.signingScheme"
_SIGNING_TIME = "io.cncf.notary.signingTime"
_AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
_EXPIRY = "io.cncf.notary.expiry"
_SIGNING_AGENT = "io.cncf.notary.signingAgent"
_TIMESTAMP = "io.cncf.notary.timestampSignature"
_MAX_CHAIN = 16


def decode_notation_signature(
    media_type: str, envelope: bytes, annotations: Mapping[str, str]
) -> SignatureRecord:
    """``annotations`` are the signature manifest's; ``envelope`` is its one layer."""
    thumbprints = _thumbprints(annotations.get(THUMBPRINTS))
    if media_type == COSE:
        return SignatureRecord(
            format="notation",
            media_type=COSE,
            notation=NotationDetails(
                signing_scheme=None,
                signing_time=None,
                expiry=None,
                algorithm=None,
                content_type=None,
                signing_agent=None,
                thumbprints=thumbprints,
            ),
        )
    if media_type != JWS:
        j.fail("media type", f"not a Notary Project signature envelope: {media_type!r}")
    return _jws(envelope, thumbprints)


def _jws(data: bytes, thumbprints: tuple[str, ...]) -> SignatureRecord:
    envelope = j.as_object(j.load(data, "JWS envelope"), "$")
    protected_bytes = b64decode(j.req_str(envelope, "protected", "$"), "$.protected")
    protected = j.as_object(j.load(protected_bytes, "$.protected"), "$.protected")
    payload = b64decode(j.req_str(envelope, "payload", "$", max_len=2**24), "$.payload")
    header = j.opt_object(envelope, "header", "$") or {}
    chain = j.opt_list(header, "x5c", "$.header")
    if not chain:
        j.fail("$.header.x5c", "missing: the signing certificate chain is required")
    if len(chain) > _MAX_CHAIN:
        j.fail("$.header.x5c", f"more than {_MAX_CHAIN} certificates")
    ders = [b64decode(item, f"$.header.x5c[{i}]") for i, item in enumerate(chain)]
    leaf = certs.from_der(ders[0], "$.header.x5c[0]")
    timestamp = j.opt_str(header, _TIMESTAMP, "$.header", max_len=2**20)
    scheme = j.opt_str(protected, _SCHEME, "$.protected")
    signing_time = _time(protected, _SIGNING_TIME) or _time(protected, _AUTHENTIC_SIGNING_TIME)
    return SignatureRecord(
        format="notation",
        media_type=JWS,
        payload=payload,
        payload_type=j.opt_str(protected, "cty", "$.protected"),
        signature=b64decode(j.req_str(envelope, "signature", "$"), "$.signature"),
        certificate_pem=leaf.pem,
        chain_pem=certs.chain_from_der(ders[1:], "$.header.x5c"),
        identity=leaf.subject,  # trust policies name signers by subject DN
        rfc3161_timestamps=()
        if timestamp is None
        else (b64decode(timestamp, f"$.header.{_TIMESTAMP}"),),
        signed_digests=_target_digest(payload),
        notation=NotationDetails(
            signing_scheme=scheme,
            signing_time=signing_time,
            expiry=_time(protected, _EXPIRY),
            algorithm=j.opt_str(protected, "alg", "$.protected"),
            content_type=j.opt_str(protected, "cty", "$.protected"),
            signing_agent=j.opt_str(header, _SIGNING_AGENT, "$.header"),
            thumbprints=thumbprints,
        ),
    )


def _target_digest(payload: bytes) -> tuple[str, ...]:
    document = j.as_object(j.load(payload, "$.payload"), "$.payload")
    target = j.req_object(document, "targetArtifact", "$.payload")
    text = j.req_str(target, "digest", "$.payload.targetArtifact")
    digest = payload_digests.parse(text)
    if digest is None:
        j.fail("$.payload.targetArtifact.digest", f"not a digest: {text!r}")
    return (digest,)


def _time(protected: dict[str, Any], key: str) -> datetime | None:
    text = j.opt_str(protected, key, "$.protected")
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        j.fail(f"$.protected.{key}", f"not an RFC 3339 time: {text!r}")
    if value.tzinfo is None:
        j.fail(f"$.protected.{key}", f"time without a time zone: {text!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00:00+05:00" is before year 1 in UTC
        j.fail(f"$.protected.{key}", f"a time out of range: {text!r}")


def _thumbprints(annotation: str | None) -> tuple[str, ...]:
    if annotation is None:
        return ()
    where = f"annotation {THUMBPRINTS}"
    items = j.as_list(j.load(annotation, where), where)
    if len(items) > _MAX_CHAIN:
        j.fail(where, f"more than {_MAX_CHAIN} thumbprints")
    thumbprints = []
    for i, item in enumerate(items):
        text = j.as_text(item, f"{where}[{i}]")
        if payload_digests.digest("sha256", text) is None:
            j.fail(f"{where}[{i}]", f"not a SHA-256 thumbprint: {text!r}")
        thumbprints.append(text.lower())
    return tuple(thumbprints)
