"""The rooms of docs/architecture.md hold: no room imports one ranked above it, no module outside
a package imports that package's private modules, every package has a public face.

The ranks are read from the document's table, so the document and this test cannot drift.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("catalog", "replication")
_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`([\w.]+)`")


def ranks(document: str) -> dict[str, int]:
    found = {}
    for line in document.splitlines():
        match = _ROW.match(line)
        if match:
            found[match.group(2)] = int(match.group(1))
    return found


RANKS = ranks((ROOT / "docs" / "architecture.md").read_text())


def room_of(module: str) -> str | None:
    """The most specific room holding ``module``; the ``catalog`` root is the base room."""
    best = None
    for room in RANKS:
        if (module == room or module.startswith(room + ".")) and (
            best is None or len(room) > len(best)
        ):
            best = room
    return best


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def sources() -> list[tuple[Path, str]]:
    return [
        (path, module_name(path)) for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    ]


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import, including those inside functions and
    TYPE_CHECKING blocks: a lazy import is still a dependency."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # `from pkg import module` names the module itself
                yield node.lineno, f"{node.module}.{alias.name}"


def upward_imports(files: list[tuple[Path, str]]) -> list[str]:
    problems = []
    for path, module in files:
        source = room_of(module)
        if source is None:
            continue
        for line, target in imports(path):
            room = room_of(target)
            if room is not None and RANKS[room] > RANKS[source]:
                problems.append(f"{module}:{line}: {source} imports {target}")
    return sorted(set(problems))


def private_imports(files: list[tuple[Path, str]]) -> list[str]:
    problems = []
    for path, importer in files:
        for line, target in imports(path):
            if target.split(".")[0] not in PACKAGES:
                continue
            parts = target.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])  # the package the private module belongs to
                    if not (importer == owner or importer.startswith(owner + ".")):
                        problems.append(f"{importer}:{line}: imports {target}")
                    break
    return sorted(set(problems))


def test_the_document_ranks_every_room() -> None:
    assert RANKS["catalog"] == 0
    assert len(set(RANKS.values())) == len(RANKS), "two rooms share a rank"
    for package in sorted({module for path, module in sources() if path.name == "__init__.py"}):
        assert room_of(package) is not None, f"{package} is in no room of docs/architecture.md"


def test_no_room_imports_a_higher_one() -> None:
    assert upward_imports(sources()) == []


def test_private_modules_stay_in_their_package() -> None:
    assert private_imports(sources()) == []


@pytest.mark.parametrize(
    "room", sorted(r for r in RANKS if r != "catalog" and not r.endswith(".v1"))
)
def test_every_room_has_a_public_face(room: str) -> None:
    init = ROOT / Path(*room.split(".")) / "__init__.py"
    tree = ast.parse(init.read_text())
    exported = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    assert exported, f"{init.relative_to(ROOT)} has no __all__"
    package = importlib.import_module(room)
    for name in package.__all__:
        assert getattr(package, name) is not None, f"{room}.{name}"


def test_the_checks_catch_what_they_forbid(tmp_path: Path) -> None:
    """The checks are not vacuous: a store module importing the gate, and a CLI module importing
    verification internals, are both reported."""
    upward, private = tmp_path / "upward.py", tmp_path / "private.py"
    upward.write_text("from catalog.gate import Gate\n")
    private.write_text("import sys\nfrom catalog.trust._internal import keys\n")
    assert upward_imports([(upward, "catalog.store.probe")]) == [
        "catalog.store.probe:1: catalog.store imports catalog.gate",
        "catalog.store.probe:1: catalog.store imports catalog.gate.Gate",
    ]
    assert private_imports([(private, "catalog.cli.probe")]) == [
        "catalog.cli.probe:2: imports catalog.trust._internal",
        "catalog.cli.probe:2: imports catalog.trust._internal.keys",
    ]
    assert private_imports([(private, "catalog.trust.probe")]) == []
