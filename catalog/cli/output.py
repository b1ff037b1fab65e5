"""How every command prints: tables for people, JSON for scripts, one convention for both.

- JSON keys are lowerCamelCase at every depth (as the OCI specs and protobuf's JSON mapping
  write them); records are written with their field names and :func:`to_json` converts them
  once, here, so no command renames keys of its own.
- Every point in time is RFC 3339 in UTC with ``Z`` (:func:`rfc3339`), in JSON and tables.
- Tables go to stdout; when it is not a terminal they are plain lines, one per row, as wide as
  their cells (a digest is never cut or folded). Progress bars go to stderr, only to a terminal.
"""

from __future__ import annotations

import enum
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from catalog.moments import rfc3339
from catalog.values import Value

FORMATS = ("table", "json")


def _chosen_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """A command's ``--output``, else the one given before the command (``xregistry -o json
    registry list``), else table."""
    if value is not None:
        return value
    root = ctx.find_root()
    return str(root.params.get("output") or "table") if root is not ctx else "table"


output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(FORMATS),
    default=None,
    callback=_chosen_format,
    help="table for people, json for scripts [default: table, or the top-level --output]",
)

# -- points in time ----------------------------------------------------------------------------


def when_text(value: datetime | None) -> str:
    """A point in time for a table: RFC 3339, UTC, to the second; empty for none."""
    return rfc3339(value, to_second=True) if value is not None else ""


# Fields that hold a point in time as Unix seconds (Rekor's integrated time): written as RFC
# 3339 like every other time.
_UNIX_SECONDS = frozenset({"integrated_time"})
_SNAKE = re.compile(r"_([a-z0-9])")


def camel(name: str) -> str:
    """``last_index_at`` → ``lastIndexAt``; a name without underscores stays as it is."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), name)


def to_json(value: Any) -> Any:
    """Records (dataclasses, ``Value`` records, NamedTuples, pydantic models), enums, times
    and containers as JSON values with lowerCamelCase keys and RFC 3339 times."""
    if _is_dataclass(value):
        import dataclasses  # only for a dataclass: `replicate once` starts without the module

        return _object((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, Value):
        return _object((name, getattr(value, name)) for name in value._FIELDS)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple record
        return _object(zip(value._fields, value, strict=True))
    if hasattr(value, "model_dump"):  # a pydantic model (not imported: start-up time)
        return to_json(value.model_dump(mode="json"))
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, Mapping):
        return _object(value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return value


def record(value: Any, **extra: Any) -> dict[str, Any]:
    """A record's fields (a dataclass's or a NamedTuple's) with ``extra`` fields beside them,
    for :func:`echo_json`."""
    names = getattr(value, "_fields", None)  # a NamedTuple's
    if names is not None:
        return {**dict(zip(names, value, strict=True)), **extra}
    import dataclasses  # a dataclass

    return {**{f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, **extra}


def _is_dataclass(value: Any) -> bool:
    """``dataclasses.is_dataclass`` for an instance, without importing the module: the mark
    its decorator leaves on the class."""
    return hasattr(type(value), "__dataclass_fields__")


def _object(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in items:
        name = str(key.value if isinstance(key, enum.Enum) else key)
        if name in _UNIX_SECONDS and isinstance(item, int) and not isinstance(item, bool):
            item = datetime.fromtimestamp(item, UTC)
        out[camel(name)] = to_json(item)
    return out


def echo_json(value: Any) -> None:
    """``value`` as the command's JSON result on stdout (and nothing else goes there)."""
    click.echo(json.dumps(to_json(value), indent=2))


def count_text(count: int, noun: str, plural: str | None = None) -> str:
    """``1 error``, ``2 errors``, ``0 errors``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


# -- tables ------------------------------------------------------------------------------------


def is_terminal() -> bool:
    return sys.stdout.isatty()


def cell_text(value: Any) -> str:
    """A table cell: times as RFC 3339 to the second, booleans as yes/no, none as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return rfc3339(value, to_second=True)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return " ".join(str(value).split("\n"))


def _plain(columns: Sequence[str] | None, rows: list[list[str]]) -> None:
    """Aligned plain lines, two spaces between columns, no trailing blanks; an empty cell is
    ``-`` so that every row has as many words-separated columns as the header."""
    lines = ([list(columns)] if columns else []) + [[c or "-" for c in row] for row in rows]
    if not lines:
        return
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Rows under a header; ``title`` above them."""
    cells = [[cell_text(v) for v in row] for row in rows]
    if not is_terminal():
        if title:
            click.echo(f"{title}:")
        _plain(columns, cells)
        return
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in cells:
        grid.add_row(*map(Text, row))  # Text: a cell's brackets are not rich markup
    console().print(grid)


def fields(rows: Sequence[tuple[str, Any]]) -> None:
    """A record as ``name  value`` lines (bold names on a terminal)."""
    cells = [[name, cell_text(value)] for name, value in rows]
    if not is_terminal():
        _plain(None, cells)
        return
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for name, value in cells:
        grid.add_row(Text(name), Text(value))
    console().print(grid)


def console() -> Any:
    """Where drawn output goes (stdout, a terminal)."""
    from rich.console import Console

    return Console()


# -- progress ----------------------------------------------------------------------------------


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int | None, int, str], None]]:
    """A bar counting M of N (N unknown until given) with a line of detail: the callback is
    ``show(total, done, detail)``. On stderr, and only when it is a terminal: progress is for
    people watching, stdout is the result and a log wants no bar."""
    from rich.console import Console

    err = Console(stderr=True)
    if not err.is_terminal:
        yield lambda total, done, detail: None
        return
    # Imported here: commands asking for JSON should not pay for it at start-up.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(description, total=None, detail="")

        def show(total: int | None, done: int, detail: str) -> None:
            bar.update(task, total=total, completed=done, detail=detail)

        yield show
