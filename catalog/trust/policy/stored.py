"""Stored policy sets: apply (versioned by content), list, compile a stored version."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from catalog.errors import InvalidArgument
from catalog.store import policies as store

# Re-exported: the record lives apart from SQL (catalog/store/views.py) for light importers.
from catalog.store.views import PolicyView as PolicyView
from catalog.trust.policy.compiled import PolicySet, compile_canonical, text_digest
from catalog.trust.policy.source import SOURCE_BYTES_MAX as SOURCE_BYTES_MAX

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

POLICIES_PAGE_MAX = 12

_log = logging.getLogger(__name__)


class Policies:
    def __init__(self, sessions: sessionmaker[Session], pki_roots: set[str]) -> None:
        self.sessions = sessions
        self.pki_roots = pki_roots

    def apply(self, name: str, source: str) -> tuple[PolicyView, bool]:
        """Validate (refusing with line and reason) and store; unchanged content is no version."""
        from catalog.store.names import validate_name  # the secrets' grammar: not for a check

        validate_name(name, "policy name")
        size = len(source.encode("utf-8", "surrogatepass"))
        if size > SOURCE_BYTES_MAX:
            raise InvalidArgument(
                f"policy {name}: the source is {size} bytes, over the limit of {SOURCE_BYTES_MAX}"
            )
        from catalog.store.audit import AuditKind, policy_resource, record  # not for a check
        from catalog.trust.policy.loading import load_policy_set  # pydantic: to apply, not list

        policies = load_policy_set(source, source=f"policy {name}", pki_roots=self.pki_roots)
        with self.sessions.begin() as session:
            row, created = store.apply_policy(
                session, name, source, policies.digest, policies.canonical
            )
            if created:  # the same content again changes nothing, and records nothing
                before = str(row.version - 1) if row.version > 1 else None
                record(
                    session,
                    AuditKind.POLICY_APPLIED,
                    policy_resource(name),
                    before,
                    str(row.version),
                    row.digest,
                )
            return PolicyView.of(row), created

    def list(self, after: str | None = None, limit: int | None = None) -> list[PolicyView]:
        """The policy sets in force by name: those after ``after``, at most ``limit``."""
        with self.sessions() as session:
            return store.current_policies(session, after, limit)


def stored_set(source: str, canonical: str | None, digest: str, origin: str) -> PolicySet:
    """A stored version of a set, ready to judge with: compiled from the canonical JSON it was
    validated to when applied (when that is its digest's), else parsed from its source (a set
    applied before the catalog kept canonical JSON, or whose canonical form this version cannot
    compile). ``origin`` names it in messages."""
    if canonical is not None and text_digest(canonical) == digest:
        try:
            return compile_canonical(canonical, origin, stored=True)
        except (KeyError, TypeError, AttributeError, ValueError):
            # The canonical form carries no format version: one written by another version of
            # xregistry (a field added, reshaped or unknown here) is left to the source, which
            # this version validates as it would any policy file (refusing what it does not
            # know: the gate then fails closed).
            _log.warning(
                "policy set %s: its stored form is not this version's; judged from its source",
                origin,
            )
    from catalog.trust.policy.loading import load_policy_set  # pydantic and YAML

    return load_policy_set(source, source=origin)
