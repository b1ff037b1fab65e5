"""Trust's two kinds of failure: bad trust material (an error) and a rejected signature (a result).

A malformed ``trusted_root.json`` or key file is a configuration mistake and raises
:class:`TrustRootError`. A signature that does not verify is not an error at all: the verifier
raises :class:`VerificationFailed` internally and turns it into
``VerifiedSignature(verified=False)`` with the reason, so callers only ever see results.
"""

from __future__ import annotations

from catalog.errors import ConfigError
from catalog.trust.signatures import Method


class TrustRootError(ConfigError):
    """Trust material (trusted root, public key, PKI bundle) that is missing or malformed."""


class VerificationFailed(Exception):
    """One verification step failed; ``str(exc)`` is the reason shown to the user.

    ``method`` is set once it is known which method (keyless, key, pki) was being tried.
    """

    def __init__(self, reason: str, method: Method | None = None) -> None:
        super().__init__(reason)
        self.method = method

    @property
    def reason(self) -> str:
        return str(self)
