"""X.509 certificates in signatures: PEM/DER parsing, the signer identity and Fulcio's extensions.

Fulcio writes its extensions under 1.3.6.1.4.1.57264.1: ``.1`` to ``.6`` as raw strings (v1,
deprecated), ``.8`` onwards as DER UTF8String (v2); see fulcio ``docs/oid-info.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypedDict

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from catalog.errors import FormatError
from catalog.formats._json import MAX_TEXT, check_text, fail

_FULCIO = "1.3.6.1.4.1.57264.1."
_OTHERNAME_SAN = _FULCIO + "7"
_ISSUER_V1 = "issuer"
_ISSUER_V2 = "issuer_v2"

# Readable names after sigstore-python's policy classes; v1 extensions are raw strings.
_V1_NAMES = {
    1: _ISSUER_V1,
    2: "github_workflow_trigger",
    3: "github_workflow_sha",
    4: "github_workflow_name",
    5: "github_workflow_repository",
    6: "github_workflow_ref",
}
_V2_NAMES = {
    8: _ISSUER_V2,
    9: "build_signer_uri",
    10: "build_signer_digest",
    11: "runner_environment",
    12: "source_repository_uri",
    13: "source_repository_digest",
    14: "source_repository_ref",
    15: "source_repository_identifier",
    16: "source_repository_owner_uri",
    17: "source_repository_owner_identifier",
    18: "build_config_uri",
    19: "build_config_digest",
    20: "build_trigger",
    21: "run_invocation_uri",
    22: "source_repository_visibility_at_signing",
    23: "deployment_environment",
}
_UTF8STRING_TAG = 0x0C
# cryptography raises these for certificates that are not well-formed, some only lazily; its
# deprecation warning (e.g. a non-positive serial) is an exception where warnings are errors.
_BAD_CERTIFICATE = (
    ValueError,
    CryptographyDeprecationWarning,
    x509.DuplicateExtension,
    x509.InvalidVersion,
    x509.UnsupportedGeneralNameType,
)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    pem: str
    subject: str  # RFC 4514
    identity: str | None  # first of: e-mail SAN, URI SAN, Fulcio otherName SAN
    issuer: str | None  # Fulcio OIDC issuer: v2 extension, else v1
    extensions: dict[str, str]


class SignerFields(TypedDict):
    """The ``SignatureRecord`` fields a signing certificate fills."""

    certificate_pem: str | None
    identity: str | None
    issuer: str | None
    extensions: dict[str, str]


def signer_fields(info: CertificateInfo | None) -> SignerFields:
    if info is None:  # a key-pair signature
        return {"certificate_pem": None, "identity": None, "issuer": None, "extensions": {}}
    return {
        "certificate_pem": info.pem,
        "identity": info.identity,
        "issuer": info.issuer,
        "extensions": info.extensions,
    }


def from_pem(text: str, path: str) -> CertificateInfo:
    with _bad_certificate(path):
        return _describe(x509.load_pem_x509_certificate(text.encode("utf-8")), path)


def from_der(der: bytes, path: str) -> CertificateInfo:
    with _bad_certificate(path):
        return _describe(x509.load_der_x509_certificate(der), path)


def chain_from_pem(text: str, path: str) -> tuple[str, ...]:
    """Each certificate of a PEM bundle, re-encoded, in the bundle's order."""
    with _bad_certificate(path):
        certificates = x509.load_pem_x509_certificates(text.encode("utf-8"))
        return tuple(_pem(cert) for cert in certificates)


def chain_from_der(ders: list[bytes], path: str) -> tuple[str, ...]:
    with _bad_certificate(path):
        return tuple(_pem(x509.load_der_x509_certificate(der)) for der in ders)


@contextmanager
def _bad_certificate(path: str) -> Iterator[None]:
    try:
        yield
    except _BAD_CERTIFICATE as exc:
        fail(path, f"not a valid X.509 certificate ({exc})")


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def _describe(cert: x509.Certificate, path: str) -> CertificateInfo:
    extensions = _fulcio_extensions(cert, path)
    subject = cert.subject.rfc4514_string()
    check_text(subject, f"{path} subject")
    return CertificateInfo(
        pem=_pem(cert),
        subject=subject,
        identity=_identity(cert, path),
        issuer=extensions.get(_ISSUER_V2) or extensions.get(_ISSUER_V1),
        extensions=extensions,
    )


def _identity(cert: x509.Certificate, path: str) -> str | None:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    candidates = [
        *names.get_values_for_type(x509.RFC822Name),
        *names.get_values_for_type(x509.UniformResourceIdentifier),
        *(
            _der_utf8string(other.value, f"{path} otherName SAN")
            for other in names.get_values_for_type(x509.OtherName)
            if other.type_id.dotted_string == _OTHERNAME_SAN
        ),
    ]
    if not candidates:
        return None
    check_text(candidates[0], f"{path} SAN")
    return candidates[0]


def _fulcio_extensions(cert: x509.Certificate, path: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for extension in cert.extensions:
        oid = extension.oid.dotted_string
        if not oid.startswith(_FULCIO) or not isinstance(
            extension.value, x509.UnrecognizedExtension
        ):
            continue
        arc = oid.removeprefix(_FULCIO)
        where = f"{path} extension {oid}"
        raw = extension.value.value
        if arc.isdigit() and int(arc) in _V1_NAMES:
            name, value = _V1_NAMES[int(arc)], _raw_utf8(raw, where)
        elif arc.isdigit() and int(arc) in _V2_NAMES:
            name, value = _V2_NAMES[int(arc)], _der_utf8string(raw, where)
        else:
            # A Fulcio extension newer than this table: keep it under its OID when it is text.
            try:
                name, value = oid, _der_utf8string(raw, where)
            except FormatError:
                continue
        check_text(value, where, max_len=MAX_TEXT)
        found[name] = value
    return found


def _raw_utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(where, "value is not UTF-8")


def _der_utf8string(der: bytes, where: str) -> str:
    if len(der) < 2 or der[0] != _UTF8STRING_TAG:
        fail(where, "value is not a DER UTF8String")
    length, start = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or len(der) < 2 + count:
            fail(where, "value has a bad DER length")
        length, start = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if start + length != len(der):
        fail(where, "DER UTF8String length does not match its value")
    return _raw_utf8(der[start:], where)
