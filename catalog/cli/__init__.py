"""The ``xregistry`` command line; ``main`` is the console script."""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.cli.main import main

__all__ = ["main"]
__getattr__ = lazy_exports(
    __name__,
    {
        "main": "main",
    },
)
