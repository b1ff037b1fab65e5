"""Human tables by default, JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts",
)


def when_text(value: datetime | None) -> str:
    """A point in time for people: UTC, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else ""


def plain(value: Any) -> Any:
    """Dataclasses, datetimes and containers as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        # RFC 3339 in UTC with ``Z``, as every JSON timestamp: 2026-11-27T10:15:00.250000Z
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), indent=2))


# Wider than any row: rich lays tables out to the console's width and folds what does not fit.
_UNBOUNDED = 1_000_000


def console() -> Console:
    """Where tables go (stdout). Not a terminal, as wide as the rows: a script or a pipe reading
    the table gets every digest whole, never folded over two lines."""
    out = Console()
    return out if out.is_terminal else Console(width=_UNBOUNDED)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*["" if v is None else str(v) for v in row])
    console().print(grid)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int | None, int, str], None]]:
    """A bar counting M of N (N unknown until given) with a line of detail: the callback is
    ``show(total, done, detail)``. On stderr, and only when it is a terminal: progress is for
    people watching, stdout is the result and a log wants no bar."""
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
