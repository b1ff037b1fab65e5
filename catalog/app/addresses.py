"""Addresses and credential files as the server and its clients read them, without the config
models (pydantic): the CLI's ``--server`` channel needs only these."""

from __future__ import annotations

import socket
from pathlib import Path

from catalog.errors import ConfigError
from catalog.files import read_capped
from catalog.hostport import ip_literal, is_loopback_host
from catalog.hostport import split_address as split_address

# Certificates, keys and tokens are small; anything larger is not one (or is hostile).
MAX_CREDENTIAL_FILE = 1 << 20


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a listen address or a client target) reaches this machine only: a
    loopback IP, a name that resolves only to loopback IPs, or a Unix socket path."""
    if address.startswith("unix:") and not address.startswith("unix-abstract:"):
        return True  # a path: the filesystem's permissions guard it
    host, _ = split_address(address.removeprefix("dns:///").removeprefix("ipv4:"))
    if not host:
        return False  # ":50051" is every interface
    ip = ip_literal(host)
    if ip is not None:
        return ip.is_loopback
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(found) and all(is_loopback_host(str(info[4][0])) for info in found)


def read_credential_file(path: Path, what: str) -> bytes:
    """A certificate, key or token file's bytes, bounded; a FIFO, device or directory is
    refused rather than read (a read that never ends would hang every TLS handshake)."""
    try:
        return read_capped(path, MAX_CREDENTIAL_FILE)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc.strerror}") from None
