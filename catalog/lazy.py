"""Public names of a package loaded on first use, so that importing one light module of a
package does not pay for its heavy siblings (a CLI command starts in a blink)."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` resolving each name in ``exports`` from its submodule."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__


def import_frozen(name: str) -> None:
    """Import module ``name`` with the collector paused, then freeze everything the process
    holds (never walked again): start-up makes ~100k objects that live as long as the process,
    and the collections that would walk them, the exit's last one included, free nothing (~60M
    instructions of a warm ``xregistry verify``'s 1,300M). Once per module: later calls find it
    imported, so a process running many commands (tests) freezes a bounded number of times."""
    if name in sys.modules:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
