"""Keyless (Fulcio) signatures checked by us: legacy cosign layers and what sigstore refuses.

sigstore-python verifies bundles, but not cosign's legacy layers (a SET without an inclusion
proof) nor ``intoto`` 0.0.2 log entries. Those are checked here, in the order Sigstore's client
spec gives: a trusted signing time from the log (SET) or a timestamp authority; the certificate
chain to a Fulcio CA *at that time*; the embedded SCT; the signature with the certificate's key;
and the log entry recording that very signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509

from catalog.trust._internal import chains, entries, keys, sct, tlog, tsa
from catalog.trust._internal.outcome import Outcome
from catalog.trust._internal.signed import Signed, require_signature_by, signatures
from catalog.trust._internal.sigstore_parsed import LogKey
from catalog.trust._internal.sigstore_root import SigstoreRoot
from catalog.trust._internal.timefmt import iso
from catalog.trust._internal.tlog import LogEntry
from catalog.trust.errors import VerificationFailed


def verify_keyless(
    signed: Signed,
    leaf: x509.Certificate,
    chain: Sequence[x509.Certificate],
    log_entries: Sequence[LogEntry],
    timestamps: Sequence[bytes],
    roots: tuple[SigstoreRoot, ...],
    *,
    require_proof: bool,
) -> Outcome:
    if not roots:
        raise VerificationFailed("no Sigstore trusted root is configured")
    if len(log_entries) != 1:
        raise VerificationFailed(
            f"a keyless signature needs one transparency-log entry, found {len(log_entries)}"
        )
    entry = log_entries[0]
    first: VerificationFailed | None = None
    # Several roots may hold the same log (production and a pinned copy of it): any one will do.
    for root, log in tlog.find_log(entry, roots):
        try:
            return _verify(signed, leaf, chain, entry, timestamps, root, log, require_proof)
        except VerificationFailed as exc:
            first = first or exc
    assert first is not None  # find_log returns at least one root or raises
    raise first


def _verify(
    signed: Signed,
    leaf: x509.Certificate,
    chain: Sequence[x509.Certificate],
    entry: LogEntry,
    timestamps: Sequence[bytes],
    root: SigstoreRoot,
    log: LogKey,
    require_proof: bool,
) -> Outcome:
    integrated = tlog.verify_proofs(entry, log, root, require_proof=require_proof)
    times = [integrated] if integrated is not None else []
    times += tsa.verified_times(timestamps, signatures(signed)[0], root)
    if not times:
        raise VerificationFailed(
            "no trusted signing time: neither a verified SET nor a signed timestamp"
        )
    path: list[x509.Certificate] = []
    for moment in times:
        path = chains.verify_chain(
            leaf,
            chain,
            _fulcio_anchors(root, moment),
            moment,
            profile="fulcio",
            authority=f"Fulcio CA of {root.id}",
        )
    if len(path) < 2:
        raise VerificationFailed("the certificate is itself a trust anchor, not a Fulcio leaf")
    sct.verify_embedded_sct(leaf, path[1], root)
    signature = require_signature_by(signed, keys.certificate_key(leaf), "the certificate's key")
    entries.check_body(entry, signed, signature, leaf)
    proofs = " and ".join(
        what
        for what, present in (("SET", integrated is not None), ("inclusion proof", entry.proof))
        if present
    )
    return Outcome(
        method="keyless",
        trust_root=root.id,
        summary=(
            f"certificate chains to a Fulcio CA of {root.id} at {iso(times[0])}; its SCT, the "
            f"Rekor {proofs} of entry {entry.log_index} and the signature verify"
        ),
        log_entry=entry,
    )


def _fulcio_anchors(root: SigstoreRoot, moment: datetime) -> list[x509.Certificate]:
    # Like sigstore: every certificate of a CA trusted at that moment may end the path.
    return [
        cert
        for authority in root.fulcio
        if authority.validity.contains(moment)
        for cert in authority.certificates
    ]
