"""catalog.lazy.import_frozen: a module imported with the collector paused, then frozen, once."""

from __future__ import annotations

import gc
import sys

from catalog.lazy import import_frozen


def test_imported_with_the_collector_paused_then_frozen_once() -> None:
    name = "colorsys"  # a small stdlib module nothing here imports
    sys.modules.pop(name, None)
    enabled = gc.isenabled()
    try:
        gc.enable()
        import_frozen(name)
        assert name in sys.modules
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert gc.isenabled()  # as it was
        import_frozen(name)  # imported: nothing to do, nothing frozen again
        assert gc.get_freeze_count() == frozen
        gc.disable()
        sys.modules.pop(name)
        import_frozen(name)
        assert not gc.isenabled()  # as it was
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
        else:
            gc.disable()
