"""Click groups whose commands are imported only when one runs (or for ``--help``): a command
pays for its own imports, never for its siblings' (the catalog's, gRPC's, sigstore's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from catalog.lazy import import_frozen


class LazyGroup(click.Group):
    """A group with ``lazy`` commands: name → ``"module:attribute"``, imported on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        command: click.Command = getattr(import_frozen(module), attribute)
        return command
