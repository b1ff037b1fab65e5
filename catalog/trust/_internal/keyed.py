"""Signatures whose trust is configured, not Fulcio-issued: public keys and private PKIs.

A transparency-log entry is optional for these (``cosign sign --key`` without ``--tlog-upload``),
but one that is present must verify, as cosign insists: against a Rekor key of a configured
Sigstore root, and recording this very signature and key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509

from catalog.trust._internal import chains, entries, keys, tlog
from catalog.trust._internal.outcome import Outcome
from catalog.trust._internal.signed import Signed, require_signature_by, signature_by
from catalog.trust._internal.timefmt import iso
from catalog.trust._internal.tlog import LogEntry
from catalog.trust.errors import VerificationFailed
from catalog.trust.roots import TrustConfig


def verify_with_keys(
    signed: Signed, log_entries: Sequence[LogEntry], trust: TrustConfig, *, require_proof: bool
) -> Outcome:
    if not trust.keys:
        raise VerificationFailed("signed with a key, but no public key is configured")
    for named in trust.keys:
        signature = signature_by(signed, named.key)
        if signature is not None:
            break
    else:
        names = ", ".join(k.name for k in trust.keys)
        which = f"key {names}" if len(trust.keys) == 1 else f"any configured key ({names})"
        raise VerificationFailed(f"signature does not verify with {which}")
    entry, _, logged = _logged(signed, signature, named.key, log_entries, trust, require_proof)
    return Outcome(
        method="key",
        trust_root=named.id,
        summary=f"signature verifies with {named.id} ({keys.describe(named.key)}){logged}",
        log_entry=entry,
        key_fingerprint=named.fingerprint,
    )


def verify_with_pki(
    signed: Signed,
    leaf: x509.Certificate,
    chain: Sequence[x509.Certificate],
    log_entries: Sequence[LogEntry],
    trust: TrustConfig,
    *,
    require_proof: bool,
) -> Outcome:
    if not trust.pki:
        raise VerificationFailed("no PKI root is configured")
    signature = require_signature_by(signed, keys.certificate_key(leaf), "the certificate's key")
    entry, integrated, logged = _logged(signed, signature, leaf, log_entries, trust, require_proof)
    # With a SET, the certificate must have been valid when the log saw the signature; without
    # one nothing vouches for a signing time, so it must be valid now (as cosign does).
    moment = integrated or datetime.now(UTC)
    first: VerificationFailed | None = None
    for root in trust.pki:
        try:
            chains.verify_chain(
                leaf,
                [*chain, *root.intermediates],
                root.roots,
                moment,
                profile="pki",
                authority=f"CA of {root.id}",
            )
        except VerificationFailed as exc:
            first = first or exc
            continue
        return Outcome(
            method="pki",
            trust_root=root.id,
            summary=f"certificate chains to {root.id} at {iso(moment)}; the signature verifies"
            + logged,
            log_entry=entry,
        )
    assert first is not None
    raise first


def _logged(
    signed: Signed,
    signature: bytes,
    verifier: entries.Verifier,
    log_entries: Sequence[LogEntry],
    trust: TrustConfig,
    require_proof: bool,
) -> tuple[LogEntry | None, datetime | None, str]:
    """The verified log entry (if the signature has one), its SET's time, words for the summary."""
    if not log_entries:
        return None, None, ""
    if len(log_entries) > 1:
        raise VerificationFailed(f"expected one transparency-log entry, found {len(log_entries)}")
    entry = log_entries[0]
    first: VerificationFailed | None = None
    for root, log in tlog.find_log(entry, trust.sigstore):
        try:
            integrated = tlog.verify_proofs(entry, log, root, require_proof=require_proof)
            entries.check_body(entry, signed, signature, verifier)
        except VerificationFailed as exc:
            first = first or exc
            continue
        return entry, integrated, f"; Rekor entry {entry.log_index} of {root.id} verifies"
    assert first is not None
    raise first
