"""Notary Project signatures: a JWS envelope built here to the notaryproject JWS spec."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding

from catalog.errors import FormatError
from catalog.formats import notation
from tests.formats.pki import Issued, issue, name

TARGET = "sha256:73c803930ea3ba1e54bc25c2bdc53edd0284c62ed651fe7b00369da519a3c333"
SIGNING_TIME = "2022-04-06T07:01:20Z"
EXPIRY = "2022-10-06T07:01:20Z"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def der(issued: Issued) -> bytes:
    return issued.certificate.public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def chain() -> tuple[Issued, Issued]:
    root = issue(name("wabbit-networks.io root"), ca=True)
    return issue(name("wabbit-networks.io"), issuer=root), root


def envelope(
    leaf: Issued,
    root: Issued,
    *,
    protected: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> bytes:
    protected = protected or {
        "alg": "ES256",
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": SIGNING_TIME,
        "io.cncf.notary.expiry": EXPIRY,
        "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"],
    }
    payload = {
        "targetArtifact": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": TARGET,
            "size": 16724,
            "annotations": {"io.wabbit-networks.buildId": "123"},
        }
    }
    protected_b64 = b64url(json.dumps(protected).encode())
    payload_b64 = b64url(json.dumps(payload).encode())
    signing_input = f"{protected_b64}.{payload_b64}".encode("ascii")
    r, s = decode_dss_signature(leaf.key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return json.dumps(
        {
            "payload": payload_b64,
            "protected": protected_b64,
            "header": header
            or {
                "x5c": [base64.b64encode(der(c)).decode() for c in (leaf, root)],
                "io.cncf.notary.signingAgent": "notation-go/1.1.0",
            },
            # JWS ECDSA signatures are r || s, not DER.
            "signature": b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        }
    ).encode()


def thumbprints(*certificates: Issued) -> dict[str, str]:
    prints = [hashlib.sha256(der(c)).hexdigest().upper() for c in certificates]
    return {notation.THUMBPRINTS: json.dumps(prints)}


def test_jws_signature(chain: tuple[Issued, Issued]) -> None:
    leaf, root = chain
    data = envelope(leaf, root)
    record = notation.decode_notation_signature(notation.JWS, data, thumbprints(leaf, root))

    assert record.format == "notation"
    assert record.media_type == "application/jose+json"
    assert record.identity == "CN=wabbit-networks.io,O=wabbit-networks.io,L=Seattle,ST=WA,C=US"
    assert record.issuer is None
    assert record.extensions == {}
    assert record.signed_digests == (TARGET,)
    assert record.payload_type == "application/vnd.cncf.notary.payload.v1+json"
    assert record.payload is not None
    assert json.loads(record.payload)["targetArtifact"]["size"] == 16724
    assert record.certificate_pem == leaf.certificate.public_bytes(Encoding.PEM).decode()
    assert record.chain_pem == (root.certificate.public_bytes(Encoding.PEM).decode(),)
    details = record.notation
    assert details is not None
    assert details.signing_scheme == "notary.x509"
    assert details.signing_time == datetime.datetime(2022, 4, 6, 7, 1, 20, tzinfo=datetime.UTC)
    assert details.expiry == datetime.datetime(2022, 10, 6, 7, 1, 20, tzinfo=datetime.UTC)
    assert details.algorithm == "ES256"
    assert details.signing_agent == "notation-go/1.1.0"
    assert details.thumbprints == tuple(hashlib.sha256(der(c)).hexdigest() for c in (leaf, root))
    # The record carries what a verifier needs: the signature checks out over the JWS input.
    doc = json.loads(data)
    assert record.signature is not None
    assert len(record.signature) == 64
    r = int.from_bytes(record.signature[:32], "big")
    s = int.from_bytes(record.signature[32:], "big")
    public_key = x509.load_pem_x509_certificate(record.certificate_pem.encode()).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(
        encode_dss_signature(r, s),
        f"{doc['protected']}.{doc['payload']}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )


def test_signing_authority_scheme_with_timestamp(chain: tuple[Issued, Issued]) -> None:
    leaf, root = chain
    protected = {
        "alg": "ES256",
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
        "io.cncf.notary.authenticSigningTime": "2022-04-06T09:01:20+02:00",
        "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"],
    }
    header = {
        "x5c": [base64.b64encode(der(leaf)).decode()],
        "io.cncf.notary.timestampSignature": base64.b64encode(b"\x30\x03\x02\x01\x00").decode(),
    }
    record = notation.decode_notation_signature(
        notation.JWS, envelope(leaf, root, protected=protected, header=header), {}
    )
    assert record.notation is not None
    assert record.notation.signing_scheme == "notary.x509.signingAuthority"
    assert record.notation.signing_time == datetime.datetime(
        2022, 4, 6, 7, 1, 20, tzinfo=datetime.UTC
    )
    assert record.notation.expiry is None
    assert record.notation.thumbprints == ()
    assert record.rfc3161_timestamps == (b"\x30\x03\x02\x01\x00",)
    assert record.chain_pem == ()


def test_cose_signature_is_metadata_only(chain: tuple[Issued, Issued]) -> None:
    leaf, root = chain
    record = notation.decode_notation_signature(notation.COSE, b"\xd2\x84", thumbprints(leaf, root))
    assert record.media_type == "application/cose"
    assert record.notation is not None
    assert len(record.notation.thumbprints) == 2
    assert record.identity is None
    assert record.signed_digests == ()


def replace_in(data: bytes, key: str, value: Any) -> bytes:
    doc = json.loads(data)
    doc[key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("change", "annotations", "message"),
    [
        (lambda d: replace_in(d, "header", {}), {}, r"\$.header.x5c: missing"),
        (lambda d: replace_in(d, "header", {"x5c": ["AAAA"]}), {}, r"x5c\[0\]: not a valid X.509"),
        (lambda d: replace_in(d, "header", {"x5c": ["AAAA"] * 17}), {}, "more than 16"),
        (lambda d: replace_in(d, "protected", "!!"), {}, r"\$.protected: not base64"),
        (
            lambda d: replace_in(d, "protected", b64url(b"[1]")),
            {},
            r"\$.protected: expected an object",
        ),
        (
            lambda d: replace_in(
                d, "protected", b64url(b'{"io.cncf.notary.expiry": "2022-10-06"}')
            ),
            {},
            "time without a time zone",
        ),
        (
            lambda d: replace_in(d, "protected", b64url(b'{"io.cncf.notary.expiry": "soon"}')),
            {},
            "not an RFC 3339 time",
        ),
        *(
            (
                lambda d, t=text: replace_in(
                    d, "protected", b64url(b'{"io.cncf.notary.expiry": "%s"}' % t)
                ),
                {},
                "a time out of range",
            )
            for text in (b"0001-01-01T00:00:00+05:00", b"9999-12-31T23:59:59-05:00")
        ),
        (lambda d: replace_in(d, "payload", b64url(b"{}")), {}, "missing 'targetArtifact'"),
        (
            lambda d: replace_in(d, "payload", b64url(b'{"targetArtifact": {"digest": "md5:x"}}')),
            {},
            "targetArtifact.digest: not a digest",
        ),
        (lambda d: d, {notation.THUMBPRINTS: "nope"}, "thumbprint#S256: not valid JSON"),
        (lambda d: d, {notation.THUMBPRINTS: '["abc"]'}, "not a SHA-256 thumbprint"),
        (lambda d: d, {notation.THUMBPRINTS: '{"a": 1}'}, "expected an array"),
        (lambda d: b"[" * 100_000, {}, "nested deeper"),
    ],
)
def test_hostile_jws(
    chain: tuple[Issued, Issued], change: Any, annotations: dict[str, str], message: str
) -> None:
    leaf, root = chain
    with pytest.raises(FormatError, match=message):
        notation.decode_notation_signature(notation.JWS, change(envelope(leaf, root)), annotations)


def test_unknown_envelope_media_type() -> None:
    with pytest.raises(FormatError, match="not a Notary Project signature envelope"):
        notation.decode_notation_signature("application/octet-stream", b"", {})
