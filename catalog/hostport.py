"""Hosts and ports as users write them: an address split into its host and port, and the IP
address a host writes. The reading every rule that classifies a host starts from: a registry
spoken to in plain HTTP (``oci._http``), an OIDC issuer's keys over http (``app.auth_config``),
a token realm's network (``oci.auth``, which also reads IPv4 as a resolver does, ``127.1``, and
the IPv4 address a NAT64 or 6to4 address carries), a listen address's exposure
(``app.addresses``, which also resolves names)."""

from __future__ import annotations

import ipaddress

__all__ = ["IPAddress", "ip_literal", "is_loopback_host", "split_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def split_address(address: str) -> tuple[str, int | None]:
    """``host:port`` or ``[v6]:port`` → (host without brackets, port); no port → None."""
    host, colon, port = address.rpartition(":")
    if not colon or "]" in port or (host.count(":") and not host.startswith("[")):
        return address.strip("[]"), None  # a bare host or IPv6 literal
    return host.strip("[]"), int(port) if port.isdigit() else None


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` (no brackets, no port) writes; None for a name. An IPv4-mapped IPv6
    address is its IPv4 address, where a dual-stack socket connects (``::ffff:169.254.169.254``
    is the metadata service); a zone (``%eth0``) is dropped."""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (``name``, ``name:port``, ``[v6]:port``) is this machine by its text
    alone: ``localhost`` or a loopback address. Never resolved: where this decides (plain HTTP to
    a registry, keys fetched over http), a name's resolution is not to be trusted."""
    name, _ = split_address(host)
    ip = ip_literal(name)
    return name == "localhost" if ip is None else ip.is_loopback
