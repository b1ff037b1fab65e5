"""Signature verification: every signature format, offline, against a trust configuration.

What another program imports to verify::

    trust = load(instances=["production"], key_files=[("release", Path("cosign.pub"))])
    result = verify_layer(media_type, layer, annotations, subject_digest, trust,
                          attachment_digest=...)
    result.verified, result.reason, result.identity, result.issuer

The steps (certificate chains, transparency-log proofs, SCTs, timestamps, DSSE) are private, in
``catalog.trust._internal``. Policies over the results are ``catalog.trust.policy``.
"""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.trust.errors import TrustRootError
    from catalog.trust.roots import (
        NamedKey,
        PkiRoot,
        TrustConfig,
        load,
        public_key,
        sigstore_instance,
    )
    from catalog.trust.signatures import Method, VerifiedSignature
    from catalog.trust.verify import verify_bundle, verify_layer

__all__ = [
    "Method",
    "NamedKey",
    "PkiRoot",
    "TrustConfig",
    "TrustRootError",
    "VerifiedSignature",
    "load",
    "public_key",
    "sigstore_instance",
    "verify_bundle",
    "verify_layer",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "TrustRootError": "errors",
        "NamedKey": "roots",
        "PkiRoot": "roots",
        "TrustConfig": "roots",
        "load": "roots",
        "public_key": "roots",
        "sigstore_instance": "roots",
        "Method": "signatures",
        "VerifiedSignature": "signatures",
        "verify_bundle": "verify",
        "verify_layer": "verify",
    },
)
