"""What a successful verification established, before it becomes a ``VerifiedSignature``."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.trust._internal.tlog import LogEntry
from catalog.trust.signatures import Method


@dataclass(frozen=True, slots=True)
class Outcome:
    method: Method
    trust_root: str  # the id of the root or key that verified it
    summary: str  # how, in words, for the result's reason
    log_entry: LogEntry | None = None  # the transparency-log entry that was verified, if any
    key_fingerprint: str | None = None  # key method: the key's SPKI SHA-256
