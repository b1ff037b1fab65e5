"""The server's TLS credentials, re-read from disk when the files change (cert-manager and
similar rotate them in place), without a restart.

gRPC calls :meth:`ServerCertificates.fetch` before every new connection's handshake, on one of
its own threads. A stat of each file tells whether anything changed; only then are the files
read and checked (the key matches the certificate, every PEM parses). A rotation caught half
done (the certificate written, the key not yet) keeps the current pair until the files agree,
so a connection never meets a broken configuration. Connections already open keep theirs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from catalog.app.tls_config import TlsSettings, read_credential_file
from catalog.errors import ConfigError

log = logging.getLogger("xregistry.tls")

# (device, inode, size, mtime) of each file, None when it cannot be stat'ed.
_Stamp = tuple[tuple[int, int, int, int] | None, ...]


@dataclass(frozen=True, slots=True)
class _Material:
    cert_chain: bytes
    key: bytes
    client_ca: bytes | None
    not_after: dt.datetime

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.key, self.cert_chain)], root_certificates=self.client_ca
        )

    def ssl_context(self, require_client_cert: bool) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: hand it the checked bytes through a private
        # in-memory file, so what is served is what was checked.
        with _pem_file(self.cert_chain) as chain, _pem_file(self.key) as key:
            context.load_cert_chain(chain, key)
        if self.client_ca is not None:
            context.load_verify_locations(cadata=self.client_ca.decode())
            context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        return context


@contextlib.contextmanager
def _pem_file(data: bytes) -> Iterator[str]:
    fd = os.memfd_create("xregistry-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


class ServerCertificates:
    """The files of a `tls` section, loaded now (a bad file is a :class:`ConfigError` at
    start) and again whenever one of them changes."""

    def __init__(self, settings: TlsSettings) -> None:
        self.settings = settings
        self._files = [settings.cert_file, settings.key_file]
        if settings.client_ca_file is not None:
            self._files.append(settings.client_ca_file)
        self._lock = threading.Lock()
        self._seen = self._stamp()
        self._material = self._load()

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._material.configuration(),
            # The stubs leave out the None that grpc documents as "keep the current one".
            cast("Callable[[], grpc.ServerCertificateConfiguration]", self.fetch),
            require_client_authentication=self.settings.require_client_cert,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration when the files changed and agree with each other, else None
        (keep the current one). Never raises: it runs inside gRPC's handshake."""
        material = self.reloaded()
        return None if material is None else material.configuration()

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side :class:`ssl.SSLContext` for HTTPS listeners (aiohttp) that swaps in a
        fresh context, at the next handshake, whenever the files change and agree."""
        current = self._material.ssl_context(self.settings.require_client_cert)

        def handshake(socket: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _: object) -> None:
            nonlocal current
            material = self.reloaded()
            if material is not None:
                try:
                    current = material.ssl_context(self.settings.require_client_cert)
                except (ssl.SSLError, ValueError, OSError) as exc:
                    log.warning("TLS files changed, unusable, keeping the certificate: %s", exc)
            socket.context = current

        outer = self._material.ssl_context(self.settings.require_client_cert)
        # Called on every handshake (server_name None without SNI), before the certificate is
        # chosen: the connection takes the newest context.
        outer.sni_callback = handshake
        return outer

    def reloaded(self) -> _Material | None:
        """The files' material when they changed since the last look and agree with each
        other, else None. Never raises (it runs inside handshakes)."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self._seen:
                return None
            # Remembered even when the load fails, so a bad rotation is logged once, not per
            # connection; the next change on disk is tried afresh.
            self._seen = stamp
            try:
                material = self._load()
            except ConfigError as exc:
                log.warning("TLS files changed, unusable, keeping the certificate in use: %s", exc)
                return None
            except Exception:
                log.exception("TLS files changed, unusable, keeping the certificate in use")
                return None
            self._material = material
        log.info(
            "TLS certificate reloaded from %s (valid until %s)", self._files[0], material.not_after
        )
        return material

    def _stamp(self) -> _Stamp:
        stamps: list[tuple[int, int, int, int] | None] = []
        for path in self._files:
            try:
                info = os.stat(path)  # follows symlinks: Kubernetes swaps a `..data` link
            except OSError:
                stamps.append(None)
            else:
                stamps.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(stamps)

    def _load(self) -> _Material:
        s = self.settings
        chain_pem = read_credential_file(s.cert_file, "tls.cert_file")
        key_pem = read_credential_file(s.key_file, "tls.key_file")
        chain = _certificates(chain_pem, f"tls.cert_file {s.cert_file}")
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"tls.key_file {s.key_file}: not an unencrypted PEM key: {exc}"
            ) from None
        if _spki(key.public_key()) != _spki(chain[0].public_key()):
            raise ConfigError(
                f"tls.key_file {s.key_file} is not the key of the certificate in {s.cert_file}"
            )
        client_ca = None
        if s.client_ca_file is not None:
            client_ca = read_credential_file(s.client_ca_file, "tls.client_ca_file")
            _certificates(client_ca, f"tls.client_ca_file {s.client_ca_file}")
        not_after = chain[0].not_valid_after_utc
        if not_after <= dt.datetime.now(dt.UTC):
            log.warning("the TLS certificate in %s expired at %s", s.cert_file, not_after)
        return _Material(chain_pem, key_pem, client_ca, not_after)


def _certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError:
        found = []
    if not found:
        raise ConfigError(f"{what}: no PEM certificate in it")
    return found


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def server_credentials(settings: TlsSettings | None) -> grpc.ServerCredentials | None:
    """Credentials for a `tls` section (None: plain text), checked now."""
    return None if settings is None else ServerCertificates(settings).credentials()
