"""RFC 3161 signed timestamps: a timestamp authority's word for when a signature existed.

Each timestamp must be a TSA's signature over the signature bytes, by a TSA of the trusted root,
issued while that TSA was trusted (the root's ``validFor``, a closed interval). As in
sigstore-python, a timestamp that does not verify earns no trust but is not fatal by itself: the
caller needs at least one trusted time from somewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rfc3161_client import (
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from catalog.trust._internal.sigstore_root import SigstoreRoot
from catalog.trust.errors import VerificationFailed

_MAX_TIMESTAMPS = 32  # as sigstore-go and sigstore-python: a bound against denial of service


def verified_times(
    timestamps: Sequence[bytes], signature: bytes, root: SigstoreRoot
) -> list[datetime]:
    if len(timestamps) > _MAX_TIMESTAMPS:
        raise VerificationFailed(f"more than {_MAX_TIMESTAMPS} signed timestamps")
    if len(set(timestamps)) != len(timestamps):
        raise VerificationFailed("the same signed timestamp appears twice")
    if timestamps and not root.timestamp_authorities:
        raise VerificationFailed(
            f"signed timestamps present but {root.id} has no timestamp authority"
        )
    times = []
    for der in timestamps:
        try:
            response = decode_timestamp_response(der)
        except ValueError as exc:
            raise VerificationFailed(f"malformed RFC 3161 timestamp ({exc})") from None
        moment = _verified_time(response, signature, root)
        if moment is not None:
            times.append(moment)
    return times


def _verified_time(
    response: TimeStampResponse, signature: bytes, root: SigstoreRoot
) -> datetime | None:
    for authority in root.timestamp_authorities:
        chain = authority.certificates
        if len(chain) < 2:  # a TSA chain is at least its signing certificate and a root
            continue
        builder = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
        for intermediate in chain[1:-1]:
            builder = builder.add_intermediate_certificate(intermediate)
        try:
            builder.build().verify_message(response, signature)
        except VerificationError:
            continue
        generated = response.tst_info.gen_time
        if authority.validity.contains(generated):
            return generated
    return None
