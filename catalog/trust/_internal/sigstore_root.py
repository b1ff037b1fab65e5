"""Sigstore trusted roots (``trusted_root.json``): parsed once into the keys and CAs we check with.

The file is read with sigstore's public protobuf models (``sigstore-models``), when a signature
first needs its keys (or at once, on request): the trust version hashes the bytes alone, and a
warm gate answering from stored verifications needs nothing else. The production and
staging roots come from the copies shipped inside the installed ``sigstore`` wheel, read directly:
``sigstore``'s own offline mode would copy them to ``~/.cache/sigstore-python`` and trust that copy
from then on, and a service must not trust a file any local user can rewrite.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from catalog.files import read_capped
from catalog.trust.errors import TrustRootError

if TYPE_CHECKING:
    from cryptography import x509
    from sigstore_models.common.v1 import PublicKey as PublicKeyModel
    from sigstore_models.common.v1 import TimeRange
    from sigstore_models.trustroot import v1

    from catalog.trust._internal import keys

Instance = Literal["production", "staging"]
# The TUF repositories whose roots the wheel ships, under ``sigstore/_store/<quoted URL>/``.
_TUF_URLS: dict[Instance, str] = {
    "production": "https://tuf-repo-cdn.sigstore.dev",
    "staging": "https://tuf-repo-cdn.sigstage.dev",
}
_MAX_BYTES = 4 * 1024 * 1024
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
class _Parsed:
    rekor_logs: tuple[LogKey, ...]
    ct_logs: tuple[LogKey, ...]
    fulcio: tuple[Authority, ...]
    timestamp_authorities: tuple[Authority, ...]


@dataclass(frozen=True, eq=False)
class SigstoreRoot:
    """A trusted root's bytes; its logs and authorities parsed from them when first used
    (:meth:`parsed` does it at once: a refused file raises :class:`TrustRootError` then)."""

    id: str  # "sigstore:production", "trusted-root:<name>"
    path: Path
    data: bytes = field(repr=False)  # the exact bytes parsed: what the trust version hashes

    @cached_property
    def _parsed(self) -> _Parsed:
        return _parse(self.id, self.path, self.data)

    def parsed(self) -> SigstoreRoot:
        """This root, parsed now."""
        self._parsed  # noqa: B018 -- computed for its errors; kept by cached_property
        return self

    @property
    def rekor_logs(self) -> tuple[LogKey, ...]:
        return self._parsed.rekor_logs

    @property
    def ct_logs(self) -> tuple[LogKey, ...]:
        return self._parsed.ct_logs

    @property
    def fulcio(self) -> tuple[Authority, ...]:
        return self._parsed.fulcio

    @property
    def timestamp_authorities(self) -> tuple[Authority, ...]:
        return self._parsed.timestamp_authorities

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def rekor_log(self, log_id: str) -> LogKey | None:
        return next((log for log in self.rekor_logs if log.named(log_id)), None)

    def ct_log(self, log_id: str) -> LogKey | None:
        return next((log for log in self.ct_logs if log.named(log_id)), None)


def shipped_root_path(instance: Instance) -> Path:
    """Where the installed ``sigstore`` wheel keeps its copy of an instance's trusted root.

    Found without importing ``sigstore`` (a 300 ms import) from the package's location.
    """
    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        raise TrustRootError("the sigstore package is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    path = package / "_store" / quote(_TUF_URLS[instance], safe="") / "trusted_root.json"
    if not path.is_file():
        raise TrustRootError(f"sigstore's shipped {instance} trusted root is missing at {path}")
    return path


def load_shipped(instance: Instance, *, parse: bool = True) -> SigstoreRoot:
    return load_file(f"sigstore:{instance}", shipped_root_path(instance), parse=parse)


def load_file(root_id: str, path: Path, *, parse: bool = True) -> SigstoreRoot:
    """The root in ``path``, parsed now unless ``parse`` is off (then when first used)."""
    try:
        data = read_capped(path, _MAX_BYTES)
    except OSError as exc:
        raise TrustRootError(f"{root_id}: cannot read {path} ({exc.strerror})") from None
    root = SigstoreRoot(id=root_id, path=path, data=data)
    return root.parsed() if parse else root


def _parse(root_id: str, path: Path, data: bytes) -> _Parsed:
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
    return _Parsed(
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
