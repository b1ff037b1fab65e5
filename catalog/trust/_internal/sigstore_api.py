"""The one module that uses sigstore-python: bundle verification through its public API.

Imported lazily (``import sigstore`` costs about 300 ms). The ``TrustedRoot`` comes from the same
file the trust configuration hashed, checked unchanged, so the version recorded with a result is
the material sigstore verified against; no TUF, no ``~/.cache/sigstore-python``.
"""

from __future__ import annotations

import functools
import hashlib

from cryptography.x509 import Certificate
from sigstore.errors import Error as SigstoreError
from sigstore.hashes import Hashed
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore_models.common.v1 import HashAlgorithm

from catalog.files import read_capped
from catalog.trust._internal.sigstore_root import _MAX_BYTES, SigstoreRoot
from catalog.trust.errors import TrustRootError, VerificationFailed


class _IdentityLeftToPolicy:
    """A ``VerificationPolicy`` that accepts any identity: the policy engine matches identities
    on the reported certificate fields. (``UnsafeNoOp`` does the same but logs a warning on
    every call, which would flood a service's log.)"""

    def verify(self, cert: Certificate) -> None:
        return None


def verify_message(data: bytes, root: SigstoreRoot, sha256: bytes) -> None:
    """A message-signature bundle signs the artifact whose SHA-256 is ``sha256``."""
    bundle = _bundle(data)
    try:
        _verifier(root).verify_artifact(
            Hashed(algorithm=HashAlgorithm.SHA2_256, digest=sha256),
            bundle,
            _IdentityLeftToPolicy(),
        )
    except (SigstoreError, ValueError) as exc:
        raise VerificationFailed(f"bundle does not verify against {root.id}: {exc}") from None


def verify_dsse(data: bytes, root: SigstoreRoot) -> tuple[str, bytes]:
    """A DSSE bundle's verified (payload type, payload); the caller checks both."""
    bundle = _bundle(data)
    try:
        return _verifier(root).verify_dsse(bundle, _IdentityLeftToPolicy())
    except (SigstoreError, ValueError) as exc:
        raise VerificationFailed(f"bundle does not verify against {root.id}: {exc}") from None


def _bundle(data: bytes) -> Bundle:
    try:
        return Bundle.from_json(data)
    except (SigstoreError, ValueError) as exc:
        raise VerificationFailed(f"sigstore refuses the bundle: {exc}") from None


@functools.lru_cache(maxsize=32)
def _verifier(root: SigstoreRoot) -> Verifier:
    # TrustedRoot.from_file is the public way in; the bytes it reads must be the ones we hashed.
    try:
        on_disk = read_capped(root.path, _MAX_BYTES)
    except OSError as exc:
        raise TrustRootError(f"{root.id}: cannot read {root.path} ({exc.strerror})") from None
    if hashlib.sha256(on_disk).hexdigest() != root.sha256:
        raise TrustRootError(f"{root.id}: {root.path} changed since the trust configuration loaded")
    try:
        return Verifier(trusted_root=TrustedRoot.from_file(str(root.path)))
    except (SigstoreError, ValueError) as exc:
        raise TrustRootError(f"{root.id}: sigstore refuses {root.path} ({exc})") from None
