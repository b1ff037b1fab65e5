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
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from catalog.trust._internal import keys, sigstore_root
from catalog.trust._internal.sigstore_root import Instance, SigstoreRoot
from catalog.trust.errors import TrustRootError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_PEM = 1024 * 1024
# Bumped if the way material is hashed ever changes, so old and new versions never collide.
_VERSION_SCHEME = b"xregistry-trust-v1\n"


@dataclass(frozen=True, eq=False)
class NamedKey:
    """A public key signatures may be made with (cosign key pairs, managed-key bundles)."""

    id: str  # "key:<name>"
    key: keys.PublicKey
    fingerprint: str  # SHA-256 hex of the SPKI DER

    @property
    def name(self) -> str:
        return self.id.removeprefix("key:")


@dataclass(frozen=True, eq=False)
class PkiRoot:
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


def sigstore_instance(instance: Instance) -> SigstoreRoot:
    """The public-good production or staging root, as shipped in the installed sigstore wheel."""
    return sigstore_root.load_shipped(instance)


def trusted_root_file(name: str, path: Path) -> SigstoreRoot:
    """Any ``trusted_root.json`` (a private Sigstore deployment, a pinned public-good root)."""
    return sigstore_root.load_file(f"trusted-root:{_name(name)}", path)


def public_key(name: str, pem: bytes) -> NamedKey:
    key_id = f"key:{_name(name)}"
    key = keys.load_pem_public_key(_bounded(pem, key_id), key_id)
    return NamedKey(id=key_id, key=key, fingerprint=keys.fingerprint(key))


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
        return _bounded(path.read_bytes(), what)
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
    if not pem.strip():
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(_bounded(pem, what)))
    except ValueError as exc:
        raise TrustRootError(f"{what}: not a PEM certificate bundle ({exc})") from None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _version(config: TrustConfig) -> str:
    lines = sorted(
        [
            *((r.id, r.data) for r in config.sigstore),
            *((k.id, keys.spki_der(k.key)) for k in config.keys),
            *((p.id, _pki_material(p)) for p in config.pki),
        ]
    )
    digest = hashlib.sha256(_VERSION_SCHEME)
    for root_id, material in lines:
        digest.update(f"{root_id} {hashlib.sha256(material).hexdigest()}\n".encode())
    return digest.hexdigest()[:16]


def _pki_material(root: PkiRoot) -> bytes:
    # Roots and intermediates are hashed apart: moving a certificate between them changes trust.
    return b"".join(
        [
            *(b"root " + c.public_bytes(Encoding.DER) for c in root.roots),
            *(b"intermediate " + c.public_bytes(Encoding.DER) for c in root.intermediates),
        ]
    )


def load(
    *,
    instances: Iterable[Instance] = ("production",),
    trusted_roots: Iterable[tuple[str, Path]] = (),
    key_files: Iterable[tuple[str, Path]] = (),
    pki_files: Iterable[tuple[str, Path, Path | None]] = (),
) -> TrustConfig:
    """A configuration from files: the usual way a service or the CLI builds one."""
    return TrustConfig(
        sigstore=(
            *(sigstore_instance(i) for i in instances),
            *(trusted_root_file(name, path) for name, path in trusted_roots),
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
