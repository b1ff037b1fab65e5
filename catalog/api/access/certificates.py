"""mTLS principals: the client certificate gRPC verified against the client CA, named by its
first URI SAN (SPIFFE IDs), else its first DNS SAN, else its subject common name.

gRPC fills these auth-context properties only for a certificate it verified: with
``require_client_cert: false`` it does not ask for one, so no certificate principal exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from catalog.principals import Principal, PrincipalKind

_NAMED_BY = ("peer_uri", "peer_dns", "x509_common_name")


def certificate_principal(auth_context: Mapping[str, Iterable[bytes]]) -> Principal | None:
    for key in _NAMED_BY:
        first = next(iter(auth_context.get(key, ())), None)
        if first:
            return Principal(PrincipalKind.CERTIFICATE, first.decode(errors="replace"))
    return None
