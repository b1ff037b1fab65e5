"""The trust configuration: which Sigstore roots, public keys and PKI roots signatures may chain to.

Every root has an id that results name (``sigstore:production``, ``sigstore:staging``,
``trusted-root:<name>``, ``key:<name>``, ``pki:<name>``). :attr:`TrustConfig.version` hashes all
of the material, so a stored verification says which configuration produced it and a change of
trust (a new key, an upgraded ``sigstore`` wheel with a rotated root) means verifying again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from catalog.files import read_capped
from catalog.trust._internal import sigstore_root
from catalog.trust._internal.sigstore_root import Instance, SigstoreRoot
from catalog.trust.errors import TrustRootError

if TYPE_CHECKING:
    # cryptography imported where keys or certificates are read: the trust version (the bytes
    # of roots, the DER of keys) needs none, nor a check answered from stored verifications.
    from cryptography import x509

    from catalog.trust._internal import keys

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_PEM = 1024 * 1024
# Bumped if the way material is hashed ever changes, so old and new versions never collide.
_VERSION_SCHEME = b"xregistry-trust-v1\n"


class NamedKey(NamedTuple):
    """A public key signatures may be made with (cosign key pairs, managed-key bundles), loaded
    from its DER when a signature is first checked with it (checked usable when named: see
    :func:`public_key`, :func:`known_key`).

    NamedTuples, this and :class:`PkiRoot`: a command answering from stored verifications makes
    the classes (a frozen dataclass's generated methods cost ~0.5 ms to create) but no key."""

    id: str  # "key:<name>"
    der: bytes  # the SubjectPublicKeyInfo DER: what the trust version hashes
    fingerprint: str  # SHA-256 hex of the SPKI DER

    @property
    def name(self) -> str:
        return self.id.removeprefix("key:")

    @property
    def key(self) -> keys.PublicKey:
        return _loaded_key(self.der, self.id)


@lru_cache(maxsize=256)
def _loaded_key(der: bytes, key_id: str) -> keys.PublicKey:
    """A named key's public key, loaded once (per DER and name) when a signature needs it."""
    from catalog.trust._internal import keys

    return keys.load_der_public_key(der, key_id)


class PkiRoot(NamedTuple):
    """A private PKI: trusted root CAs and the intermediates that may complete a chain."""

    id: str  # "pki:<name>"
    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]


@dataclass(frozen=True, eq=False)
class TrustConfig:
    sigstore: tuple[SigstoreRoot, ...] = ()
    keys: tuple[NamedKey, ...] = ()
    pki: tuple[PkiRoot, ...] = ()
    version: str = field(init=False)

    def __post_init__(self) -> None:
        ids = [r.id for r in self.sigstore] + [k.id for k in self.keys] + [p.id for p in self.pki]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise TrustRootError(f"trust root ids must be unique: {', '.join(duplicates)}")
        object.__setattr__(self, "version", _version(self))

    @property
    def root_ids(self) -> tuple[str, ...]:
        return (
            *(r.id for r in self.sigstore),
            *(k.id for k in self.keys),
            *(p.id for p in self.pki),
        )


def sigstore_instance(instance: Instance, *, parse: bool = True) -> SigstoreRoot:
    """The public-good production or staging root, as shipped in the installed sigstore wheel
    (parsed when first used unless ``parse``)."""
    return sigstore_root.load_shipped(instance, parse=parse)


def trusted_root_file(name: str, path: Path, *, parse: bool = True) -> SigstoreRoot:
    """Any ``trusted_root.json`` (a private Sigstore deployment, a pinned public-good root)."""
    return sigstore_root.load_file(f"trusted-root:{_name(name)}", path, parse=parse)


def public_key(name: str, pem: bytes) -> NamedKey:
    """A key from PEM, refused now (:class:`TrustRootError`) unless signatures are checked with
    keys of its kind and size."""
    from catalog.trust._internal import keys

    key_id = f"key:{_name(name)}"
    der = keys.spki_der(keys.load_pem_public_key(_bounded(pem, key_id), key_id))
    return known_key(name, der)


def known_key(name: str, der: bytes) -> NamedKey:
    """A key from the SPKI DER of a key already checked usable (a stored policy's, checked when
    the policy was validated): cryptography loads it when a signature is first checked."""
    return NamedKey(id=f"key:{_name(name)}", der=der, fingerprint=hashlib.sha256(der).hexdigest())


def pki_root(name: str, roots_pem: bytes, intermediates_pem: bytes = b"") -> PkiRoot:
    root_id = f"pki:{_name(name)}"
    roots = _certificates(roots_pem, f"{root_id} roots")
    if not roots:
        raise TrustRootError(f"{root_id}: no root certificate")
    intermediates = _certificates(intermediates_pem, f"{root_id} intermediates")
    for cert in (*roots, *intermediates):
        if not _is_ca(cert):
            subject = cert.subject.rfc4514_string()
            raise TrustRootError(f"{root_id}: {subject} is not a CA certificate")
    return PkiRoot(id=root_id, roots=roots, intermediates=intermediates)


def read(path: Path, what: str) -> bytes:
    """A small trust file (PEM key or bundle), with a clear error when it cannot be read."""
    try:
        return read_capped(path, _MAX_PEM)
    except OSError as exc:
        raise TrustRootError(f"{what}: cannot read {path} ({exc.strerror})") from None


def _name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TrustRootError(
            f"trust root name {name!r} must be 1-64 letters, digits, '.', '_' or '-'"
        )
    return name


def _bounded(data: bytes, what: str) -> bytes:
    if len(data) > _MAX_PEM:
        raise TrustRootError(f"{what}: {len(data)} bytes is over the limit of {_MAX_PEM}")
    return data


def _certificates(pem: bytes, what: str) -> tuple[x509.Certificate, ...]:
    from cryptography import x509

    if not pem.strip():
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(_bounded(pem, what)))
    except ValueError as exc:
        raise TrustRootError(f"{what}: not a PEM certificate bundle ({exc})") from None


def _is_ca(cert: x509.Certificate) -> bool:
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _version(config: TrustConfig) -> str:
    lines = sorted(
        [
            *((r.id, r.data) for r in config.sigstore),
            *((k.id, k.der) for k in config.keys),
            *((p.id, _pki_material(p)) for p in config.pki),
        ]
    )
    digest = hashlib.sha256(_VERSION_SCHEME)
    for root_id, material in lines:
        digest.update(f"{root_id} {hashlib.sha256(material).hexdigest()}\n".encode())
    return digest.hexdigest()[:16]


def _pki_material(root: PkiRoot) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    # Roots and intermediates are hashed apart: moving a certificate between them changes trust.
    return b"".join(
        [
            *(b"root " + c.public_bytes(Encoding.DER) for c in root.roots),
            *(b"intermediate " + c.public_bytes(Encoding.DER) for c in root.intermediates),
        ]
    )


def public_good(*, staging: bool = False, parse_sigstore: bool = True) -> TrustConfig:
    """Sigstore's public-good production root (and staging's): the trust of a command line,
    which names no key or root file, as the default trust settings build it."""
    instances: tuple[Instance, ...] = ("production", "staging") if staging else ("production",)
    return load(instances=instances, parse_sigstore=parse_sigstore)


def load(
    *,
    instances: Iterable[Instance] = ("production",),
    trusted_roots: Iterable[tuple[str, Path]] = (),
    key_files: Iterable[tuple[str, Path]] = (),
    pki_files: Iterable[tuple[str, Path, Path | None]] = (),
    parse_sigstore: bool = True,
) -> TrustConfig:
    """A configuration from files: the usual way a service or the CLI builds one. Without
    ``parse_sigstore`` the Sigstore roots are parsed when a signature first needs them (a
    command answering from stored verifications never does; a service finds a bad file at
    start)."""
    parse = parse_sigstore
    return TrustConfig(
        sigstore=(
            *(sigstore_instance(i, parse=parse) for i in instances),
            *(trusted_root_file(name, path, parse=parse) for name, path in trusted_roots),
        ),
        keys=tuple(public_key(name, read(path, f"key:{name}")) for name, path in key_files),
        pki=tuple(
            pki_root(
                name,
                read(roots, f"pki:{name} roots"),
                b"" if intermediates is None else read(intermediates, f"pki:{name} intermediates"),
            )
            for name, roots, intermediates in pki_files
        ),
    )
