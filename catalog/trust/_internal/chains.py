"""X.509 path validation at a chosen moment: Fulcio leaves and private-PKI leaves.

A Fulcio certificate lives ten minutes, so it is checked at the time the transparency log (or a
timestamp authority) vouches the signature was made, never at "now". The extension policies are
written out rather than WebPKI's: Fulcio and private CAs do not follow the CA/B Forum profile
(no ``keyUsage`` on some roots, code-signing instead of client-auth leaves).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from catalog.trust._internal.timefmt import iso
from catalog.trust.errors import VerificationFailed

Profile = Literal["fulcio", "pki"]
_NOISE = re.compile(r"\s*\(encountered processing <Certificate\(.*?\)>\)|^validation failed: ")


def verify_chain(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
    *,
    profile: Profile,
    authority: str,
) -> list[x509.Certificate]:
    """The path from ``leaf`` to one of ``anchors`` valid at ``at``, leaf first.

    ``untrusted`` only helps build the path (the signature's chain annotation); trust comes from
    ``anchors`` alone. ``authority`` names them in the reason ("Fulcio CA of sigstore:production").
    """
    if not anchors:
        raise VerificationFailed(
            f"certificate chain does not lead to a trusted {authority} at {iso(at)} "
            "(none was trusted at that time)"
        )
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(at)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_LEAF_POLICIES[profile])
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, list(untrusted)).chain)
    except (VerificationError, x509.UnsupportedGeneralNameType, ValueError) as exc:
        detail = _NOISE.sub("", str(exc))
        raise VerificationFailed(
            f"certificate chain does not lead to a trusted {authority} at {iso(at)} ({detail})"
        ) from None


def _ca_basic_constraints(_: Policy, __: x509.Certificate, value: x509.BasicConstraints) -> None:
    if not value.ca:
        raise ValueError("issuer is not a CA")


def _not_a_ca(_: Policy, __: x509.Certificate, value: x509.BasicConstraints | None) -> None:
    # Sigstore's client spec: the signing certificate is a leaf, never a CA.
    if value is not None and value.ca:
        raise ValueError("the signing certificate is a CA certificate")


def _ca_key_usage(_: Policy, __: x509.Certificate, value: x509.KeyUsage | None) -> None:
    if value is not None and not value.key_cert_sign:
        raise ValueError("issuer's key usage does not allow signing certificates")


def _leaf_key_usage(_: Policy, __: x509.Certificate, value: x509.KeyUsage | None) -> None:
    if value is not None and not value.digital_signature:
        raise ValueError("key usage does not allow digital signatures")


def _code_signing(_: Policy, __: x509.Certificate, value: x509.ExtendedKeyUsage | None) -> None:
    # Like Go's x509 (cosign) for a private PKI: a leaf without the extension may sign anything.
    # Fulcio always writes it, so there it is required (see the policies below).
    if value is not None and ExtendedKeyUsageOID.CODE_SIGNING not in value:
        raise ValueError("extended key usage does not include code signing")


_CA_POLICY = (
    ExtensionPolicy.permit_all()
    .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, _ca_basic_constraints)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage)
)
_LEAF_POLICIES: dict[Profile, ExtensionPolicy] = {
    "fulcio": ExtensionPolicy.permit_all()
    .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _not_a_ca)
    .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _leaf_key_usage)
    .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _code_signing),
    "pki": ExtensionPolicy.permit_all()
    .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _not_a_ca)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _leaf_key_usage)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _code_signing),
}
