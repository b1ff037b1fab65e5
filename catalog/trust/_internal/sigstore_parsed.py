"""A Sigstore trusted root's logs and authorities, parsed from its bytes (see ``sigstore_root``:
parsed when a signature first needs them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.trust.errors import TrustRootError

if TYPE_CHECKING:
    from cryptography import x509
    from sigstore_models.common.v1 import PublicKey as PublicKeyModel
    from sigstore_models.common.v1 import TimeRange
    from sigstore_models.trustroot import v1

    from catalog.trust._internal import keys

_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Validity:
    """A closed interval (the trusted-root spec's ``TimeRange``); no end means still valid."""

    start: datetime
    end: datetime | None

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment <= self.end)


@dataclass(frozen=True, slots=True)
class LogKey:
    """A transparency log (Rekor) or certificate-transparency log key."""

    url: str
    log_id: str  # hex, as the trusted root declares it
    key_id: str  # hex SHA-256 of the key's SPKI DER (how SCTs and Rekor v1 name the key)
    key: keys.PublicKey
    validity: Validity

    def named(self, log_id: str) -> bool:
        return log_id.lower() in (self.log_id, self.key_id)


@dataclass(frozen=True, slots=True)
class Authority:
    """A certificate authority (Fulcio) or timestamp authority: its chain, leaf first."""

    uri: str | None
    certificates: tuple[x509.Certificate, ...]
    validity: Validity


@dataclass(frozen=True, slots=True)
class Parsed:
    rekor_logs: tuple[LogKey, ...]
    ct_logs: tuple[LogKey, ...]
    fulcio: tuple[Authority, ...]
    timestamp_authorities: tuple[Authority, ...]


def parse(root_id: str, path: Path, data: bytes) -> Parsed:
    # sigstore's models (pydantic) and cryptography's X.509: imported for the first root parsed.
    from pydantic import ValidationError
    from sigstore_models.trustroot import v1

    try:
        model = v1.TrustedRoot.from_json(data)
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()
        raise TrustRootError(
            f"{root_id}: {path} is not a valid trusted root ({' '.join(first[:3])})"
        ) from None
    fulcio = tuple(
        _authority(root_id, "certificate authority", ca) for ca in model.certificate_authorities
    )
    if not fulcio:
        raise TrustRootError(f"{root_id}: {path} has no certificate authority")
    return Parsed(
        rekor_logs=_logs(root_id, model.tlogs),
        ct_logs=_logs(root_id, model.ctlogs),
        fulcio=fulcio,
        timestamp_authorities=tuple(
            _authority(root_id, "timestamp authority", tsa) for tsa in model.timestamp_authorities
        ),
    )


def _logs(root_id: str, logs: list[v1.TransparencyLogInstance]) -> tuple[LogKey, ...]:
    from catalog.trust._internal import keys

    found = []
    for log in logs:
        key = _log_key(root_id, log.base_url, log.public_key)
        if key is None:
            continue
        found.append(
            LogKey(
                url=log.base_url,
                log_id=log.log_id.key_id.hex(),
                key_id=keys.fingerprint(key),
                key=key,
                validity=_validity(log.public_key.valid_for),
            )
        )
    return tuple(found)


def _log_key(root_id: str, url: str, model: PublicKeyModel) -> keys.PublicKey | None:
    from catalog.trust._internal import keys

    if not model.raw_bytes:
        raise TrustRootError(f"{root_id}: log {url} has no public key")
    try:
        return keys.load_der_public_key(model.raw_bytes, f"{root_id}: log {url}")
    except TrustRootError:
        # Like sigstore: a log whose key we cannot use (a newer algorithm) is skipped, not fatal,
        # so the rest of the root stays usable; nothing can verify against that log.
        return None


def _authority(root_id: str, kind: str, model: v1.CertificateAuthority) -> Authority:
    from cryptography import x509

    where = f"{root_id}: {kind} {model.uri or model.subject.common_name}"
    if not model.cert_chain.certificates:
        raise TrustRootError(f"{where} has an empty certificate chain")
    try:
        chain = tuple(
            x509.load_der_x509_certificate(c.raw_bytes) for c in model.cert_chain.certificates
        )
    except ValueError as exc:
        raise TrustRootError(f"{where}: bad certificate ({exc})") from None
    return Authority(uri=model.uri, certificates=chain, validity=_validity(model.valid_for))


def _validity(model: TimeRange | None) -> Validity:
    # A key without ``validFor`` is valid forever (the field is optional in the spec); a range
    # without its start does not parse at all, so a truncated range is never read as unbounded.
    if model is None:
        return Validity(_BEGINNING, None)
    return Validity(model.start, model.end)
