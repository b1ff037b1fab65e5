"""The CLI's start-up imports, made with the garbage collector paused.

A command imports ~100k objects that live as long as the process; the collections that would
walk them during the imports (and at every later one, the exit's included) free nothing (7% of
a no-change ``replicate once``). So imports run with the collector paused, and what the process
holds afterwards is frozen: never walked again.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The block (imports) with the collector paused; what the process holds then, frozen."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # else the first allocation once resumed walks all of it
        if enabled:
            gc.enable()


def load(name: str) -> ModuleType:
    """Module ``name``, imported under :func:`collector_paused` the first time. Once per
    module: a process running many commands (tests) freezes a bounded number of times."""
    if name in sys.modules:
        return sys.modules[name]
    with collector_paused():
        return importlib.import_module(name)
