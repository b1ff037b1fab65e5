"""The distributions the image leaves out (scripts/prune-venv's NOT_AT_RUNTIME) are not needed
by the service or its CLI: nothing in the project imports them, even lazily inside a function,
and everything the project imports, and the rich rendering its CLI does, works with them made
unimportable. (scripts/test-image then runs the image itself, where they are absent.)"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.deploy._prune import ROOT, excluded_modules, prune_venv


def project_imports() -> dict[str, list[str]]:
    """Every absolute module the project's code imports, anywhere in a file → where."""
    found: dict[str, list[str]] = {}
    for package in prune_venv().OWN:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    found.setdefault(module, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_left_out_distributions_are_in_the_lock() -> None:
    """A name that left the lock would be skipped by pip without a word: the list stays true."""
    locked = {
        line.split("==")[0].lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    assert set(prune_venv().NOT_AT_RUNTIME) <= locked
    assert {"pygments", "markdown_it", "mdurl", "dns", "email_validator", "pycparser"} <= (
        excluded_modules()
    )


def test_the_project_never_imports_them() -> None:
    excluded = excluded_modules()
    offending = {
        module: where
        for module, where in project_imports().items()
        if module.split(".")[0] in excluded
    }
    assert offending == {}


def test_what_the_project_imports_works_without_them() -> None:
    """In a fresh interpreter with the left-out modules unimportable: every module of the
    project, every module it imports (lazy ones included), and what the CLI draws with rich on
    a terminal (tables, trees, markup, a progress bar)."""
    own = prune_venv().OWN
    third_party = sorted(
        m
        for m in project_imports()
        if m.split(".")[0] not in (*own, *sys.stdlib_module_names, "tests")
    )
    script = """
import importlib, io, json, pkgutil, sys
blocked = json.loads(sys.argv[1])
for name in blocked:
    sys.modules[name] = None  # import raises ImportError
imported = 0
for package in json.loads(sys.argv[2]):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        importlib.import_module(info.name)
        imported += 1
for name in json.loads(sys.argv[3]):
    importlib.import_module(name)
    imported += 1

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

out = io.StringIO()
console = Console(file=out, force_terminal=True, width=100)
grid = Table(title="t", title_justify="left")
grid.add_column("digest", overflow="fold")
grid.add_row(Text("sha256:" + "a" * 64))
tree = Tree("[bold]root[/] :lock:")
tree.add(escape("[not markup]"))
console.print(grid, tree, "[red]markup[/] {'repr': [1, 2.5, None]}")
with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
              TimeElapsedColumn(), console=console) as bar:
    bar.update(bar.add_task("index", total=3), completed=2)
loaded = sorted(name for name in blocked if sys.modules.get(name) is not None)
print(json.dumps({"imported": imported, "loaded": loaded, "drawn": len(out.getvalue())}))
"""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            json.dumps(sorted(excluded_modules())),
            # migrations/ is Alembic's to load (env.py needs its context); the image test runs it.
            json.dumps([p for p in own if p != "migrations"]),
            json.dumps(third_party),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["loaded"] == []
    assert result["imported"] > 100
    assert result["drawn"] > 0
