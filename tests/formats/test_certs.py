"""Signer identity and Fulcio extensions from certificates, made here where fixtures lack a case."""

from __future__ import annotations

import base64
import json
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from catalog.errors import FormatError
from catalog.formats import certs
from tests.formats.fixtures import FIXTURES
from tests.formats.pki import Issued, issue, name

FULCIO = "1.3.6.1.4.1.57264.1."


def utf8string(text: str) -> bytes:
    data = text.encode()
    length = bytes([len(data)]) if len(data) < 128 else bytes([0x82]) + len(data).to_bytes(2, "big")
    return b"\x0c" + length + data


def fulcio(arc: int, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{FULCIO}{arc}"), value)


def pem(issued: Issued) -> str:
    return issued.certificate.public_bytes(Encoding.PEM).decode()


def test_othername_san_identity_and_v2_extensions() -> None:
    other_name = x509.OtherName(
        x509.ObjectIdentifier(FULCIO + "7"), utf8string("jdoe!oidc.example")
    )
    long_uri = "https://ci.example/" + "x" * 300  # a long-form DER length
    leaf = issue(
        name("ignored"),
        extensions=[
            x509.SubjectAlternativeName([other_name]),
            fulcio(8, utf8string("https://oidc.example")),
            fulcio(9, utf8string(long_uri)),
            fulcio(23, utf8string("production")),
            fulcio(99, utf8string("from the future")),
            fulcio(98, b"\x04\x02hi"),  # an unknown extension that is no string: skipped
        ],
    )
    info = certs.from_pem(pem(leaf), "leaf")
    assert info.identity == "jdoe!oidc.example"
    assert info.issuer == "https://oidc.example"
    assert info.extensions == {
        "issuer_v2": "https://oidc.example",
        "build_signer_uri": long_uri,
        "deployment_environment": "production",
        FULCIO + "99": "from the future",
    }


def test_email_wins_over_uri_and_v2_issuer_over_v1() -> None:
    leaf = issue(
        name("x"),
        extensions=[
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier("https://a.example"),
                    x509.RFC822Name("a@example.com"),
                ]
            ),
            fulcio(1, b"https://v1.example"),
            fulcio(8, utf8string("https://v2.example")),
        ],
    )
    info = certs.from_pem(pem(leaf), "leaf")
    assert (info.identity, info.issuer) == ("a@example.com", "https://v2.example")


def test_certificate_without_san_has_no_identity() -> None:
    info = certs.from_pem(pem(issue(name("plain"))), "leaf")
    assert info.identity is None
    assert info.issuer is None
    assert info.subject == "CN=plain,O=wabbit-networks.io,L=Seattle,ST=WA,C=US"


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        (fulcio(8, b"https://raw-not-der"), "not a DER UTF8String"),
        (fulcio(8, b"\x0c\x05abc"), "length does not match"),
        (fulcio(8, b"\x0c\x85\x00\x00\x00\x00\x01a"), "bad DER length"),
        (fulcio(8, b"\x0c\x02\xff\xfe"), "not UTF-8"),
        (fulcio(1, b"\xff"), "not UTF-8"),
        (fulcio(5, b"repo\x00"), "contains NUL"),
    ],
)
def test_malformed_fulcio_extensions(extension: x509.ExtensionType, message: str) -> None:
    leaf = issue(name("x"), extensions=[extension])
    with pytest.raises(FormatError, match=message):
        certs.from_pem(pem(leaf), "leaf")


@pytest.mark.parametrize(
    "text",
    ["", "junk", "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n"],
)
def test_bad_pem(text: str) -> None:
    with pytest.raises(FormatError, match=r"not a valid X\.509 certificate"):
        certs.from_pem(text, "leaf")
    with pytest.raises(FormatError, match=r"not a valid X\.509 certificate"):
        certs.chain_from_pem(text, "chain")


def test_mangled_real_certificates_fail_cleanly() -> None:
    bundle = json.loads(
        (FIXTURES / "sigstore-python" / "bundle_v3_github.whl.sigstore").read_bytes()
    )
    chain = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
    der = base64.b64decode(chain[0]["rawBytes"])
    rng = random.Random(20240501)
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(1500):
        mangled = bytearray(der)
        for _ in range(rng.randint(1, 4)):
            mangled[rng.randrange(len(mangled))] = rng.randrange(256)
        try:
            certs.from_der(bytes(mangled), "leaf")
            outcomes["decoded"] += 1
        except FormatError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 300
    assert outcomes["decoded"] > 300
