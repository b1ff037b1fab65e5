"""``--log-level`` and ``--log-format``: global options, for ``serve`` above all (they override
its config's ``log`` section); given to another command, they set up its logging too."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import click

if TYPE_CHECKING:
    from catalog.logs import Format

# catalog.logs.LEVELS, said again: every command parses these options, and importing the
# logging module here would slow every command's start.
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_KEY = "xregistry.log"  # ctx.meta (shared by every context of a command): the values given


def _given(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    ctx.meta.setdefault(_KEY, {})[str(param.name)] = value
    from catalog import logs

    level, form = given_log_options(ctx)
    logs.configure(level or "WARNING", form or "text")
    return value


def log_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        envvar="XREGISTRY_LOG_FORMAT",
        expose_value=False,
        callback=_given,
        help="Log lines as text or JSON (one object a line) on stderr [serve default: text].",
    )(func)
    return click.option(
        "--log-level",
        type=click.Choice(_LEVELS, case_sensitive=False),
        envvar="XREGISTRY_LOG_LEVEL",
        expose_value=False,
        callback=_given,
        help="Least severe log lines shown [serve default: INFO; others: WARNING].",
    )(func)


def given_log_options(ctx: click.Context) -> tuple[str | None, Format | None]:
    """The (level, format) given on the command line or in the environment, or None each."""
    given: dict[str, str] = ctx.meta.get(_KEY, {})
    return given.get("log_level"), cast("Format | None", given.get("log_format"))
