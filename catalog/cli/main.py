"""Entry point: ``xregistry``."""

from __future__ import annotations

import click

from catalog import __version__
from catalog.cli.inspect import inspect_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xregistry")
def main() -> None:
    """xregistry: catalog, verify and replicate what lives in OCI registries."""


main.add_command(inspect_command)

if __name__ == "__main__":
    main()
