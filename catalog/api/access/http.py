"""Access control for the HTTP listeners, the same as for gRPC: the caller from a bearer token
(static or OIDC) or a verified client certificate, the route's permission from
:data:`~catalog.api.access.permissions.ENDPOINTS` (deny by default), the handler run as the
caller.

    app = web.Application(middlewares=[access_middleware(access)])  # access: Access(config.auth)

With no ``auth`` section every request runs as the anonymous principal (the listener's own
exposure rule keeps that to loopback). Answers: 401 (with ``WWW-Authenticate: Bearer``) for
missing or refused credentials, 403 for a principal without the permission or a route without
an entry; the text never carries a token.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from catalog.api.access.authenticate import Unauthenticated
from catalog.api.access.control import Access
from catalog.api.access.permissions import ENDPOINTS, Permission
from catalog.principals import ANONYMOUS, acting_as

log = logging.getLogger(__name__)


def route_key(request: web.Request) -> str:
    """``METHOD /pattern``: the key of the request's route in the endpoint table (the pattern,
    not the path, so ``/events/{source}`` is one entry)."""
    resource = request.match_info.route.resource
    pattern = resource.canonical if resource is not None else request.path
    return f"{request.method} {pattern}"


def access_middleware(
    access: Access, endpoints: Mapping[str, Permission] = ENDPOINTS
) -> Middleware:
    authenticator, authorizer = access.authenticator, access.authorizer

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            raise request.match_info.http_exception  # 404/405: nothing to authorize
        key = route_key(request)
        needed = endpoints.get(key)
        if needed is None:
            log.warning("%s has no permission entry: refused", key)
            raise web.HTTPForbidden(text=f"{key} is not open to anyone\n")
        if authenticator is None or authorizer is None or needed is Permission.OPEN:
            with acting_as(ANONYMOUS):
                return await handler(request)
        try:
            principal = await authenticator.principal(
                _authorization(request.headers.getall("Authorization", [])),
                lambda: _certificate_context(request),
            )
        except Unauthenticated as exc:
            log.info("%s from %s: unauthenticated: %s", key, request.remote, exc)
            raise web.HTTPUnauthorized(
                text=f"{exc}\n", headers={"WWW-Authenticate": "Bearer"}
            ) from None
        if not authorizer.grants(principal, needed):
            log.info("%s denied to %s", key, principal)
            raise web.HTTPForbidden(text=f"{principal} may not call {key}\n")
        with acting_as(principal):
            return await handler(request)

    return middleware


def _authorization(values: Iterable[str]) -> list[tuple[str, str]]:
    return [("authorization", value) for value in values]


def _certificate_context(request: web.Request) -> Mapping[str, Iterable[bytes]]:
    """The verified client certificate's names, keyed as gRPC's auth context keys them (the
    TLS layer verified it against the client CA; without one, none is asked for)."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return {}
    cert: Any = ssl_object.getpeercert()  # typeshed's union of its value shapes is unusable
    if not cert:
        return {}
    names: dict[str, list[bytes]] = {"peer_uri": [], "peer_dns": [], "x509_common_name": []}
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "URI":
            names["peer_uri"].append(value.encode())
        elif kind == "DNS":
            names["peer_dns"].append(value.encode())
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names["x509_common_name"].append(value.encode())
    return names
