"""Loopback port allocation."""

from __future__ import annotations

import os
import socket

# Tries of a server on a port of free_port's: each can lose the port to another process's bind,
# or to an outgoing connection's (a busy machine's connects sweep the same port range).
START_ATTEMPTS = 5


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    There is a small race between closing this socket and the caller binding the port; callers
    that start external processes retry on "address already in use". The port is one `bind(0)`
    gives: Linux gives those one parity and outgoing connections the other first (which is which
    depends on the low end of ip_local_port_range), so a busy process's connects do not take it
    meanwhile. Insisting on a parity of our own was costly where it was the connects' (this
    kernel: each pick bound ~14,000 ports for 0.7 s, and a registry binding meanwhile found every
    port of its own parity taken). Under pytest-xdist each worker takes only its own share of the
    ports, so a port one worker picked and has not bound yet (a server starts in about a second)
    is never another's pick, and neither adopts the other's server.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    mine = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")) % workers
    held: list[socket.socket] = []  # kept bound while looking, so no port comes back twice
    try:
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            if port // 2 % workers == mine:
                return port
    finally:
        for sock in held:
            sock.close()


def lan_address() -> str | None:
    """This machine's IPv4 address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("198.51.100.1", 9))  # UDP: picks the route, sends nothing
        except OSError:
            return None
        address: str = sock.getsockname()[0]
    return None if address.startswith("127.") else address
