"""What scripts/prune-venv takes out of the image's venv, for the tests that check it."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


@cache
def prune_venv() -> ModuleType:
    """scripts/prune-venv as a module (its lists: NOT_AT_RUNTIME, OWN, …)."""
    path = ROOT / "scripts" / "prune-venv"
    loader = importlib.machinery.SourceFileLoader("prune_venv", str(path))
    spec = importlib.util.spec_from_loader("prune_venv", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@cache
def excluded_modules() -> frozenset[str]:
    """The top-level import names of the distributions left out, from their installed files."""
    names: set[str] = set()
    for dist in prune_venv().NOT_AT_RUNTIME:
        for file in importlib.metadata.distribution(dist).files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__"):
                continue
            names.add(top.removesuffix(".py"))
    return frozenset(names)
