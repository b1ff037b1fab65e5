"""The gRPC edge of the catalog: servicers, server assembly, error mapping, paging.

``catalog.api.v1`` is generated from ``protos/`` by ``scripts/gen-protos``; do not edit it.
"""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.api.audit_servicer import AuditServicer, audit_service
    from catalog.api.catalog_servicer import CatalogServicer
    from catalog.api.errors import ErrorMappingInterceptor, status_code_for
    from catalog.api.gate_servicer import GateServicer
    from catalog.api.http import HttpListener
    from catalog.api.paging import PageTokens
    from catalog.api.replication_servicer import ReplicationServicer
    from catalog.api.server import (
        ApiServer,
        build_server,
        catalog_service,
        gate_service,
        replication_service,
    )

__all__ = [
    "ApiServer",
    "AuditServicer",
    "CatalogServicer",
    "ErrorMappingInterceptor",
    "GateServicer",
    "HttpListener",
    "PageTokens",
    "ReplicationServicer",
    "audit_service",
    "build_server",
    "catalog_service",
    "gate_service",
    "replication_service",
    "status_code_for",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "AuditServicer": "audit_servicer",
        "audit_service": "audit_servicer",
        "ApiServer": "server",
        "build_server": "server",
        "catalog_service": "server",
        "gate_service": "server",
        "replication_service": "server",
        "CatalogServicer": "catalog_servicer",
        "GateServicer": "gate_servicer",
        "ReplicationServicer": "replication_servicer",
        "ErrorMappingInterceptor": "errors",
        "status_code_for": "errors",
        "PageTokens": "paging",
        "HttpListener": "http",
    },
)
