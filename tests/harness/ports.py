"""Loopback port allocation."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    There is a small race between closing this socket and the caller binding the port; callers
    that start external processes retry on "address already in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def lan_address() -> str | None:
    """This machine's IPv4 address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("198.51.100.1", 9))  # UDP: picks the route, sends nothing
        except OSError:
            return None
        address: str = sock.getsockname()[0]
    return None if address.startswith("127.") else address
