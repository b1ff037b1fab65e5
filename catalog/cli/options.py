"""Options shared by commands that talk to registries."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from catalog.oci.client import RegistryOptions
from catalog.oci.credentials import Credentials


def registry_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--insecure``, ``--ca-file``, ``--username`` (password from XREGISTRY_PASSWORD),
    ``--token-realm``."""
    func = click.option(
        "--token-realm",
        "token_realms",
        multiple=True,
        metavar="HOST[:PORT]",
        help="A token server besides the registry's own host that may receive the credentials "
        "(repeat; e.g. gitlab.com for registry.gitlab.com). Others are refused.",
    )(func)
    func = click.option(
        "--username",
        help="Registry user name; the password is read from $XREGISTRY_PASSWORD. "
        "Without it, credentials come from docker's config.json (auths, credHelpers, credsStore).",
    )(func)
    func = click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="PEM bundle of CAs to trust for the registry's TLS certificate.",
    )(func)
    func = click.option(
        "--insecure",
        is_flag=True,
        help="Allow plain HTTP to a registry that is not on loopback (loopback always may).",
    )(func)
    return func


def build_registry_options(
    insecure: bool, ca_file: Path | None, username: str | None, token_realms: tuple[str, ...] = ()
) -> RegistryOptions:
    credentials = None
    if username:
        password = os.environ.get("XREGISTRY_PASSWORD")
        if password is None:
            raise click.UsageError("--username needs the password in $XREGISTRY_PASSWORD")
        credentials = Credentials(username, password)
    return RegistryOptions(
        insecure=insecure,
        ca_file=ca_file,
        credentials=credentials,
        token_realms=frozenset(token_realms),
        # A command runs once and exits: the standard library's HTTP starts in a fraction of
        # aiohttp's import (the server's gate and replication keep aiohttp).
        transport="stdlib",
    )
