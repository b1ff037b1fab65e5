"""What verification establishes about one signature: the verifier's result record.

The verifier (``catalog.trust.verify``) produces :class:`VerifiedSignature`; policies
(``catalog.trust.policy``) and the gate (``catalog.gate``) judge images from them, and the
store keeps them so that a result is computed once per trust configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple

Method = Literal["keyless", "key", "pki"]
_NO_EXTENSIONS: Mapping[str, str] = MappingProxyType({})


class VerifiedSignature(NamedTuple):
    """One signature (or signed attestation) checked against the trust configuration.

    ``verified`` is True only when the cryptography holds (signature over the payload, chain to a
    trusted root at signing time, transparency-log promise where the method needs one) *and* the
    payload names the image digest being judged. ``reason`` says why not, or how it verified.
    Identity matching (issuer, subject, extensions) is the policy's job, on these fields.
    A NamedTuple: immutable, and made without the generated source a dataclass compiles.
    """

    attachment_digest: str
    layer_digest: str
    verified: bool
    reason: str
    method: Method | None  # None when nothing could be tried
    trust_root: str | None  # which root or key verified it: "sigstore:production", "key:<fp>"…
    trust_version: str  # the trust configuration's version this result was computed under
    identity: str | None = None  # certificate SAN (email, URI, otherName)
    issuer: str | None = None  # Fulcio OIDC issuer
    extensions: Mapping[str, str] = _NO_EXTENSIONS  # Fulcio extensions by name
    key_fingerprint: str | None = None  # sha256 hex of the public key's SPKI DER (key method)
    log_index: int | None = None
    log_id: str | None = None
    integrated_time: int | None = None
    predicate_type: str | None = None  # set when the signed payload is an in-toto statement
    signed_digests: tuple[str, ...] = ()  # what the payload says it signs
