"""Public names of a package loaded on first use, so that importing one light module of a
package does not pay for its heavy siblings (a CLI command starts in a blink)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType


def lazy_exports(
    package: str, exports: dict[str, str], *, module: str | None = None
) -> Callable[[str], object]:
    """A module ``__getattr__`` resolving each name in ``exports`` from its submodule of
    ``package``. ``module``: the module it serves, when not the package itself. A name once
    resolved is kept in that module, so later uses are plain lookups (a query building a record
    a row)."""
    home = module or package

    def __getattr__(name: str) -> object:
        submodule = exports.get(name)
        if submodule is None:
            raise AttributeError(f"module {home!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        setattr(sys.modules[home], name, value)
        return value

    return __getattr__


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The block (start-up imports) with the collector paused; what the process holds then,
    frozen: never walked again. A command makes ~100k objects at start that live as long as the
    process, and the collections that would walk them, the exit's last one included, free
    nothing (~60M instructions of a warm ``xregistry verify``'s 1,300M; 7% of a no-change
    ``replicate once``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # else the first allocation once resumed walks all of it
        if enabled:
            gc.enable()


def import_frozen(name: str) -> ModuleType:
    """Module ``name``, imported under :func:`collector_paused` the first time. Once per
    module: later calls find it imported, so a process running many commands (tests) freezes a
    bounded number of times."""
    if name in sys.modules:
        return sys.modules[name]
    with collector_paused():
        return importlib.import_module(name)
