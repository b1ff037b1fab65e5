"""Which verification method a signature's material calls for, and trying it.

No certificate: a key pair, checked with the configured keys. A certificate: keyless (Fulcio,
when there is a transparency-log entry and a Sigstore root) and/or a private PKI; the first
that verifies wins, and when all fail the reason says what each found.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from catalog.trust._internal import keyed, keyless
from catalog.trust._internal.outcome import Outcome
from catalog.trust._internal.signed import Signed
from catalog.trust._internal.tlog import LogEntry
from catalog.trust.errors import VerificationFailed
from catalog.trust.roots import TrustConfig
from catalog.trust.signatures import Method


def verify_signed(
    signed: Signed,
    certificate_pem: str | None,
    chain_pem: Sequence[str],
    log_entries: Sequence[LogEntry],
    timestamps: Sequence[bytes],
    trust: TrustConfig,
    *,
    require_proof: bool,
) -> Outcome:
    if certificate_pem is None:
        try:
            return keyed.verify_with_keys(signed, log_entries, trust, require_proof=require_proof)
        except VerificationFailed as exc:
            raise VerificationFailed(exc.reason, "key") from None
    # The decoders accepted these PEM texts, so they parse.
    leaf = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    chain = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in chain_pem]
    failures: list[tuple[Method, VerificationFailed]] = []
    if trust.sigstore and log_entries:
        try:
            return keyless.verify_keyless(
                signed,
                leaf,
                chain,
                log_entries,
                timestamps,
                trust.sigstore,
                require_proof=require_proof,
            )
        except VerificationFailed as exc:
            failures.append(("keyless", exc))
    if trust.pki:
        try:
            return keyed.verify_with_pki(
                signed, leaf, chain, log_entries, trust, require_proof=require_proof
            )
        except VerificationFailed as exc:
            failures.append(("pki", exc))
    if not failures:
        if log_entries:
            raise VerificationFailed(
                "signed with a certificate, but no Sigstore or PKI root is configured"
            )
        raise VerificationFailed(
            "signed with a certificate but has no transparency-log entry (so it cannot be "
            "keyless), and no PKI root is configured"
        )
    if len(failures) == 1:
        only_method, only = failures[0]
        raise VerificationFailed(only.reason, only_method)
    raise VerificationFailed(
        "; ".join(f"{method}: {failure.reason}" for method, failure in failures)
    )
