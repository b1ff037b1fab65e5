"""The gate's answer as a plain record, apart from the gate itself: the CLI with ``--server``
builds it from the server's reply without importing the checker (the trust roots, Sigstore,
the live indexer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from catalog.trust.policy.facts import Decision


class CheckResult(NamedTuple):
    decision: Decision
    reference: str
    trust_version: str
    cached: bool
