"""A signature is evidence about an image only when its payload names that image's digest.

cosign simple signing names it in ``critical.image.docker-manifest-digest``; an in-toto statement
in its subjects. Without this check, a signature copied from another image would pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog.errors import InvalidArgument
from catalog.formats import payload_digests
from catalog.trust.errors import VerificationFailed


def normalize(subject_digest: str) -> str:
    """``subject_digest`` as ``alg:hex`` in lower case; an :class:`InvalidArgument` otherwise."""
    parsed = payload_digests.parse(subject_digest)
    if parsed is None:
        raise InvalidArgument(f"not a manifest digest: {subject_digest!r}")
    return parsed


def require_subject(signed_digests: Sequence[str], subject_digest: str) -> None:
    if subject_digest in signed_digests:
        return
    if not signed_digests:
        raise VerificationFailed(
            f"the signed payload names no digest, so it says nothing about {subject_digest}"
        )
    raise VerificationFailed(
        f"signature is for another digest: payload names {', '.join(signed_digests)}, "
        f"not {subject_digest}"
    )
