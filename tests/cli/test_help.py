"""``--help`` teaches: every command of the tree says what it does and every option what it
sets, so that a command or option added later cannot ship mute."""

from __future__ import annotations

from collections.abc import Iterator

import click

from catalog.cli.main import main


def tree(command: click.Command, path: str = "xregistry") -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, name
            yield from tree(sub, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    mute = []
    commands = list(tree(main))
    assert len(commands) >= 30
    for path, command in commands:
        if not (command.help or command.short_help):
            mute.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                mute.append(f"{path} {'/'.join(param.opts)}")
    assert mute == []
