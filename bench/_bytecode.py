"""Our processes as an installed package runs them: with bytecode.

``pip install`` compiles every module; an editable checkout run with ``PYTHONDONTWRITEBYTECODE``
(set on these machines) compiles each module again in every process (~40 ms and more per
command). The benches time our commands with bytecode kept in a cache of their own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

BYTECODE = Path(tempfile.gettempdir()) / "xregistry-bench-bytecode"


def installed_env(
    base: Mapping[str, str] | None = None, tree: Path | None = None
) -> dict[str, str]:
    """``base`` (default: this process's environment) with bytecode cached, from ``tree``'s
    sources when given."""
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(BYTECODE)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env
