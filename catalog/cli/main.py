"""Entry point: ``xregistry``."""

from __future__ import annotations

import click

from catalog import __version__
from catalog.cli.artifact import artifact_group, find_command, tag_group
from catalog.cli.gate import policy_group, verify_command
from catalog.cli.index import index_command
from catalog.cli.inspect import inspect_command
from catalog.cli.registry import registry_group
from catalog.cli.replicate import replicate_group
from catalog.cli.serve import serve_command
from catalog.cli.trust import trust_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xregistry")
@click.option(
    "--database",
    envvar="XREGISTRY_DATABASE",
    help="Catalog database URL [default: sqlite:///xregistry.db; postgresql://… for production].",
)
@click.option(
    "--server",
    envvar="XREGISTRY_SERVER",
    help="Talk to a running `xregistry serve` at HOST:PORT instead of the database.",
)
def main(database: str | None, server: str | None) -> None:
    """xregistry: catalog, verify and replicate what lives in OCI registries.

    \b
    Start here:
      xregistry registry add local localhost:5000
      xregistry index local
      xregistry artifact show localhost:5000/shop/api:1.4
      xregistry find pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1
    """


for command in (
    inspect_command,
    registry_group,
    index_command,
    artifact_group,
    find_command,
    tag_group,
    serve_command,
    verify_command,
    policy_group,
    trust_group,
    replicate_group,
):
    main.add_command(command)

if __name__ == "__main__":
    main()
