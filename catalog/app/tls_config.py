"""The transport side of the serve configuration: the `tls` section, the words of
`insecure_serve`, and the rule for who may listen where.

A server listens on a non-loopback address only with TLS and authentication, or when the
config carries :data:`INSECURE_SERVE_WORDS` exactly; on loopback it serves without either and
says so in its log.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from catalog.errors import ConfigError

INSECURE_SERVE_WORDS = "I accept an unauthenticated, unencrypted API on this network"

# Certificates, keys and tokens are small; anything larger is not one (or is hostile).
MAX_CREDENTIAL_FILE = 1 << 20


class TlsSettings(BaseModel):
    """The server's certificate and key (PEM) and, for mTLS, the CA its clients' certificates
    must chain to. All three are re-read when they change on disk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    require_client_cert: bool = False

    @model_validator(mode="after")
    def _client_certificates(self) -> TlsSettings:
        # grpcio offers no "ask for a client certificate but let callers without one in": with a
        # client CA, clients must present a certificate, so say it in the config.
        if self.client_ca_file is not None and not self.require_client_cert:
            raise ValueError(
                "client_ca_file needs require_client_cert: true (gRPC either requires a "
                "client certificate or does not ask for one)"
            )
        if self.require_client_cert and self.client_ca_file is None:
            raise ValueError("require_client_cert needs client_ca_file (the CA clients chain to)")
        return self


def _exact_words(value: str | None) -> str | None:
    if value is not None and value != INSECURE_SERVE_WORDS:
        raise ValueError(f'must be exactly "{INSECURE_SERVE_WORDS}" (or absent)')
    return value


# The exact sentence or absent: a near miss is a mistake, not consent.
InsecureServe = Annotated[str | None, AfterValidator(_exact_words)]


def split_address(address: str) -> tuple[str, int | None]:
    """``host:port`` or ``[v6]:port`` → (host without brackets, port); no port → None."""
    host, colon, port = address.rpartition(":")
    if not colon or "]" in port or (host.count(":") and not host.startswith("[")):
        return address.strip("[]"), None  # a bare host or IPv6 literal
    return host.strip("[]"), int(port) if port.isdigit() else None


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a listen address or a client target) reaches this machine only: a
    loopback IP, a name that resolves only to loopback IPs, or a Unix socket path."""
    if address.startswith("unix:") and not address.startswith("unix-abstract:"):
        return True  # a path: the filesystem's permissions guard it
    host, _ = split_address(address.removeprefix("dns:///").removeprefix("ipv4:"))
    if not host:
        return False  # ":50051" is every interface
    try:
        return _loopback_ip(host)
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(found) and all(_loopback_ip(str(info[4][0])) for info in found)


def _loopback_ip(host: str) -> bool:
    ip = ipaddress.ip_address(host.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def exposure_warnings(
    listen: str, *, tls: bool, authenticated: bool, insecure_serve: str | None
) -> list[str]:
    """What to log about where and how the server listens.

    Raises :class:`ConfigError` (one line) for a non-loopback address without TLS and
    authentication, unless ``insecure_serve`` carries :data:`INSECURE_SERVE_WORDS`.
    """
    loopback = is_loopback(listen)
    wanted = (("TLS", tls), ("authentication", authenticated))
    missing = [name for name, present in wanted if not present]
    if not missing:
        return []
    if loopback:
        return [f"listening on {listen} without {' or '.join(missing)}: for development only"]
    if insecure_serve != INSECURE_SERVE_WORDS:
        raise ConfigError(
            f"refusing to listen on {listen} (not loopback) without {' and '.join(missing)}: "
            "configure `tls` and `auth`, listen on 127.0.0.1, or set insecure_serve: "
            f'"{INSECURE_SERVE_WORDS}"'
        )
    return [f"listening on {listen} without {' or '.join(missing)}, as insecure_serve accepts"]


def read_credential_file(path: Path, what: str) -> bytes:
    """A certificate, key or token file's bytes, bounded; a FIFO, device or directory is
    refused rather than read (a read that never ends would hang every TLS handshake)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} {path}: not a regular file")
        data = file.read(MAX_CREDENTIAL_FILE + 1)
    if len(data) > MAX_CREDENTIAL_FILE:
        raise ConfigError(f"{what} {path}: larger than {MAX_CREDENTIAL_FILE} bytes")
    return data
