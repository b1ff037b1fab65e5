"""The gate's answer as a plain record, apart from the gate itself: the CLI with ``--server``
builds it from the server's reply without importing the checker (the trust roots, Sigstore,
the live indexer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalog.trust.policy.facts import Decision


@dataclass(frozen=True, slots=True)
class CheckResult:
    decision: Decision
    reference: str
    trust_version: str
    cached: bool
