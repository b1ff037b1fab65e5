"""Transparency-log (Rekor v1) evidence: the signed entry timestamp, inclusion proof, checkpoint.

The SET is Rekor's signed promise to include an entry, over the RFC 8785 canonical JSON of
``{body, integratedTime, logID, logIndex}``; it is also what makes the integrated time a trusted
signing time. An inclusion proof (RFC 9162 §2.1.3.2) shows the entry is in the tree whose root
hash the checkpoint (a signed note) commits to. Legacy cosign signatures carry only a SET.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from pydantic import ValidationError
from sigstore_models.rekor import v1 as rekor_v1

from catalog.formats.records import TlogEntry
from catalog.trust._internal import keys
from catalog.trust._internal.sigstore_parsed import LogKey
from catalog.trust._internal.sigstore_root import SigstoreRoot
from catalog.trust._internal.timefmt import from_unix, iso
from catalog.trust.errors import VerificationFailed

_SIGNATURE_LINE = re.compile(r"\u2014 (\S+) (\S+)\n")
_MAX_PROOF_HASHES = 64  # a tree of 2**64 leaves needs fewer


@dataclass(frozen=True, slots=True)
class InclusionProof:
    log_index: int  # the index in the (shard's) tree, which may differ from the entry's
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str | None


@dataclass(frozen=True, slots=True)
class LogEntry:
    kind: str | None
    version: str | None
    log_index: int | None
    log_id: str | None  # hex
    integrated_time: int | None
    body: bytes | None
    signed_entry_timestamp: bytes | None
    proof: InclusionProof | None


def from_record(entry: TlogEntry, proof: InclusionProof | None = None) -> LogEntry:
    return LogEntry(
        kind=entry.kind,
        version=entry.version,
        log_index=entry.log_index,
        log_id=entry.log_id,
        integrated_time=entry.integrated_time,
        body=entry.body,
        signed_entry_timestamp=entry.signed_entry_timestamp,
        proof=proof,
    )


def proof_from_json(value: Any) -> InclusionProof:
    """A bundle's ``inclusionProof`` (proto3 JSON), read with sigstore's public models."""
    try:
        model = rekor_v1.InclusionProof.from_dict(value)
    except (ValidationError, ValueError, TypeError) as exc:
        raise VerificationFailed(f"malformed inclusion proof ({_first_line(exc)})") from None
    return InclusionProof(
        log_index=model.log_index,
        tree_size=model.tree_size,
        root_hash=model.root_hash,
        hashes=tuple(model.hashes),
        checkpoint=None if model.checkpoint is None else model.checkpoint.envelope,
    )


def find_log(entry: LogEntry, roots: tuple[SigstoreRoot, ...]) -> list[tuple[SigstoreRoot, LogKey]]:
    """The trusted roots holding the log that wrote ``entry``, with its key, in config order."""
    if entry.log_id is None:
        raise VerificationFailed("the transparency-log entry names no log ID")
    log_id = entry.log_id
    found = [(root, log) for root in roots for log in (root.rekor_log(log_id),) if log is not None]
    if not found:
        held = ", ".join(r.id for r in roots) or "none configured"
        raise VerificationFailed(
            f"transparency-log entry is from Rekor log {log_id}, in no trusted root ({held})"
        )
    return found


def verify_set(entry: LogEntry, log: LogKey, root: SigstoreRoot) -> datetime:
    """Check the SET; return the integrated time it makes trustworthy."""
    if entry.signed_entry_timestamp is None:
        raise VerificationFailed("the transparency-log entry has no SET (signed entry timestamp)")
    if entry.body is None or entry.integrated_time is None or entry.log_index is None:
        raise VerificationFailed(
            "the transparency-log entry lacks its body, integrated time or log index"
        )
    assert entry.log_id is not None  # find_log checked it
    canonical = rfc8785.dumps(
        {
            "body": base64.b64encode(entry.body).decode("ascii"),
            "integratedTime": entry.integrated_time,
            "logID": entry.log_id,
            "logIndex": entry.log_index,
        }
    )
    if not keys.signs(log.key, entry.signed_entry_timestamp, canonical):
        raise VerificationFailed(f"SET does not verify against any Rekor key of {root.id}")
    integrated = from_unix(entry.integrated_time)
    if not log.validity.contains(integrated):
        raise VerificationFailed(
            f"Rekor key {log.url} of {root.id} was not trusted at the integrated time "
            f"{iso(integrated)}"
        )
    return integrated


def verify_proofs(
    entry: LogEntry, log: LogKey, root: SigstoreRoot, *, require_proof: bool
) -> datetime | None:
    """Check what the entry carries: its SET (giving the integrated time) and inclusion proof.

    Legacy cosign signatures and v0.1 bundles may have only a SET; newer bundles must have an
    inclusion proof and may have a SET too. An entry with neither proves nothing.
    """
    integrated = None
    if entry.signed_entry_timestamp is not None:
        integrated = verify_set(entry, log, root)
    # As sigstore does for v0.1 bundles: a proof without a checkpoint is useless, not fatal.
    if entry.proof is not None and (require_proof or entry.proof.checkpoint is not None):
        verify_inclusion(entry, log, root)
    elif require_proof:
        raise VerificationFailed("the transparency-log entry has no inclusion proof")
    elif integrated is None:
        raise VerificationFailed(
            "the transparency-log entry has neither a SET nor an inclusion proof"
        )
    return integrated


def verify_inclusion(entry: LogEntry, log: LogKey, root: SigstoreRoot) -> None:
    """Check the inclusion proof against the entry body and its checkpoint against the log key."""
    proof = entry.proof
    if proof is None:
        raise VerificationFailed("the transparency-log entry has no inclusion proof")
    if entry.body is None:
        raise VerificationFailed("the transparency-log entry has no body")
    if proof.checkpoint is None:
        raise VerificationFailed("the inclusion proof has no checkpoint")
    computed = _root_from_proof(hashlib.sha256(b"\x00" + entry.body).digest(), proof)
    if computed != proof.root_hash:
        raise VerificationFailed(
            "inclusion proof does not lead to its root hash: the entry is not in the log"
        )
    size, root_hash = _verify_checkpoint(proof.checkpoint, log, root)
    if (size, root_hash) != (proof.tree_size, proof.root_hash):
        raise VerificationFailed("the checkpoint is for another tree than the inclusion proof")


def _root_from_proof(leaf_hash: bytes, proof: InclusionProof) -> bytes:
    # RFC 9162 §2.1.3.2, step by step.
    if not 0 <= proof.log_index < proof.tree_size or len(proof.hashes) > _MAX_PROOF_HASHES:
        raise VerificationFailed("inclusion proof has an index outside its tree")
    fn, sn, r = proof.log_index, proof.tree_size - 1, leaf_hash
    for p in proof.hashes:
        if sn == 0:
            raise VerificationFailed("inclusion proof has more hashes than its tree is deep")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationFailed("inclusion proof has fewer hashes than its tree is deep")
    return r


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _verify_checkpoint(text: str, log: LogKey, root: SigstoreRoot) -> tuple[int, bytes]:
    """(tree size, root hash) of a checkpoint signed by ``log``; a signed note, C2SP format."""
    if text.count("\n\n") != 1 or not text.endswith("\n"):
        raise VerificationFailed("malformed checkpoint: not a signed note")
    note, signatures = text.split("\n\n")
    note += "\n"
    lines = note.split("\n")
    if len(lines) < 4 or not lines[0]:
        raise VerificationFailed("malformed checkpoint: no origin, size and root hash")
    try:
        size = int(lines[1])
        root_hash = base64.b64decode(lines[2], validate=True)
    except ValueError:
        raise VerificationFailed("malformed checkpoint: bad size or root hash") from None
    # Rekor v1 signs checkpoints with the log key; the key hint is the log ID's first 4 bytes.
    hints = {bytes.fromhex(log.key_id)[:4], bytes.fromhex(log.log_id)[:4]}
    for _name, encoded in _SIGNATURE_LINE.findall(signatures + "\n"):
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        if raw[:4] in hints and keys.signs(log.key, raw[4:], note.encode("utf-8")):
            return size, root_hash
    raise VerificationFailed(f"checkpoint is not signed by Rekor log {log.url} of {root.id}")


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).splitlines()[:3])
