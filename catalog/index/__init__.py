"""The indexer: walks a registry or an image layout and records what it finds, incrementally;
one digest live for the gate."""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.index.crawler import Crawler
    from catalog.index.live import index_live, resolve_live
    from catalog.index.progress import IndexStats, ProgressCallback
    from catalog.index.run import index_registry
    from catalog.index.single import index_digest
    from catalog.index.sources import LayoutSource, RegistrySource

__all__ = [
    "Crawler",
    "IndexStats",
    "LayoutSource",
    "ProgressCallback",
    "RegistrySource",
    "index_digest",
    "index_live",
    "index_registry",
    "resolve_live",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "index_registry": "run",
        "index_digest": "single",
        "index_live": "live",
        "resolve_live": "live",
        "IndexStats": "progress",
        "ProgressCallback": "progress",
        "Crawler": "crawler",
        "LayoutSource": "sources",
        "RegistrySource": "sources",
    },
)
