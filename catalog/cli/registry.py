"""``xregistry registry add|list|remove``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from catalog.cli.context import Catalog, Reader, with_catalog, with_reader
from catalog.cli.errors import reports_errors
from catalog.cli.hosts import all_registries
from catalog.cli.output import count_text, echo_json, output_option, table, when_text
from catalog.store.views import IndexStatus

if TYPE_CHECKING:
    from catalog.store.views import RegistryView


@click.group("registry")
def registry_group() -> None:
    """Registries the catalog indexes."""


@registry_group.command("add")
@click.argument("name")
@click.argument("host")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP to a host that is not loopback.")
@click.option(
    "--ca",
    metavar="NAME",
    help="Trust the CA file of this name in the config's secrets.ca_files (the server's with "
    "--server).",
)
@click.option(
    "--credentials",
    metavar="NAME",
    help="Credentials of this name in the config's secrets.credentials (the server's with "
    "--server); never a path or variable. Without either: anonymous, or locally docker's "
    "config.json.",
)
@click.option(
    "--repository",
    "repositories",
    multiple=True,
    help="Only these repositories (glob: * one path segment, ** any depth; repeat). "
    "Plain names need no _catalog access.",
)
@click.option("--interval", help="Index every so often: 90s, 15m, 1h30m, 1d.")
@click.option("--cron", help="Index on a cron schedule, e.g. '*/15 * * * *'.")
@output_option
@reports_errors
@with_catalog
def add(
    catalog: Catalog,
    name: str,
    host: str,
    insecure: bool,
    ca: str | None,
    credentials: str | None,
    repositories: tuple[str, ...],
    interval: str | None,
    cron: str | None,
    output: str,
) -> None:
    """Add registry NAME at HOST[:PORT], or an image layout at oci:ROOT[/PATH].

    HOST may be a URL: http://HOST[:PORT] is plain HTTP (as --insecure), https://HOST[:PORT]
    TLS; a URL with a path or query is refused.

    \b
    Example:
      xregistry registry add local localhost:5000 --interval 15m
      xregistry registry add lab http://10.0.0.5:5000 --interval 1h30m
      xregistry registry add acme registry.acme.io --credentials robot --ca corp
    """
    from catalog.app.config import schedule_text  # pydantic: only `add` needs it
    from catalog.store.views import RegistrySpec  # created on first use: only `add` needs it

    schedule = schedule_text(interval, cron) if interval or cron else None
    view = catalog.add_registry(
        RegistrySpec(
            name=name,
            host=host,
            insecure=insecure,
            ca_file=ca,
            credentials_ref=credentials,
            repositories=repositories,
            index_schedule=schedule,
        )
    )
    if output == "json":
        echo_json(view)
    else:
        click.echo(f"added registry {view.name} ({view.host})")


@registry_group.command("list")
@output_option
@reports_errors
@with_reader
def list_(catalog: Reader, output: str) -> None:
    """List the registries the catalog knows: host, schedule, the last index run.

    \b
    Examples:
      xregistry registry list
      xregistry --server reg.acme.io:50051 registry list -o json
    """
    views = all_registries(catalog)
    if output == "json":
        echo_json(views)
        return
    table(
        None,
        ["name", "host", "schedule", "last index", "status"],
        [
            (v.name, v.host, v.index_schedule, when_text(v.last_index_at), index_status(v))
            for v in views
        ],
    )


def index_status(view: RegistryView) -> str | None:
    """The last index run's outcome in words: ``succeeded, 2 errors``, ``failed: <why>``,
    ``running``; None before the first run."""
    status = view.last_index_status
    if status == IndexStatus.FAILED:
        return f"{status}: {view.last_index_error}"
    if status == IndexStatus.SUCCEEDED and view.last_index_errors:
        return f"{status}, {count_text(view.last_index_errors, 'error')}"
    return status


@registry_group.command("remove")
@click.argument("name")
@output_option
@reports_errors
@with_catalog
def remove(catalog: Catalog, name: str, output: str) -> None:
    """Remove registry NAME and what the catalog recorded of it.

    \b
    Example:
      xregistry registry remove mirror
    """
    catalog.remove_registry(name)
    if output == "json":
        echo_json({"name": name, "removed": True})
    else:
        click.echo(f"removed registry {name}")
