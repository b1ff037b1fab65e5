"""The SQL store: typed models, engine and session setup (migrations on open), recording and
query functions answering with view records."""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.store.db import DEFAULT_URL, exclusive, make_engine, session_factory, upgrade
    from catalog.store.queries import (
        ArtifactView,
        AttachmentView,
        IndexErrorView,
        PackageMatch,
        Page,
        ProvenanceView,
        RegistryView,
        RepositoryView,
        TagEventView,
        TagView,
    )
    from catalog.store.registries import (
        RegistrySpec,
        create_registry,
        delete_registry,
        get_registry,
    )

__all__ = [
    "DEFAULT_URL",
    "ArtifactView",
    "AttachmentView",
    "IndexErrorView",
    "PackageMatch",
    "Page",
    "ProvenanceView",
    "RegistrySpec",
    "RegistryView",
    "RepositoryView",
    "TagEventView",
    "TagView",
    "create_registry",
    "delete_registry",
    "exclusive",
    "get_registry",
    "make_engine",
    "session_factory",
    "upgrade",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "DEFAULT_URL": "db",
        "exclusive": "db",
        "make_engine": "db",
        "session_factory": "db",
        "upgrade": "db",
        "ArtifactView": "queries",
        "AttachmentView": "queries",
        "IndexErrorView": "queries",
        "PackageMatch": "queries",
        "Page": "queries",
        "ProvenanceView": "queries",
        "RegistryView": "queries",
        "RepositoryView": "queries",
        "TagEventView": "queries",
        "TagView": "queries",
        "RegistrySpec": "registries",
        "create_registry": "registries",
        "delete_registry": "registries",
        "get_registry": "registries",
    },
)
