"""The catalog's application layer, shared by the CLI and the gRPC servicers: the catalog's
operations (registries, indexing, queries), reading the audit, and the server's YAML
configuration."""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.app.audit_service import AuditService
    from catalog.app.catalog_reads import CatalogReads
    from catalog.app.catalog_service import CatalogService
    from catalog.app.config import ServeConfig, load_config

__all__ = ["AuditService", "CatalogReads", "CatalogService", "ServeConfig", "load_config"]
__getattr__ = lazy_exports(
    __name__,
    {
        "AuditService": "audit_service",
        "CatalogReads": "catalog_reads",
        "CatalogService": "catalog_service",
        "ServeConfig": "config",
        "load_config": "config",
    },
)
