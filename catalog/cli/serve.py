"""``xregistry serve``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from catalog.cli.errors import reports_errors
from catalog.config import ServeConfig, load_config


@click.command("serve")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML configuration (database, listen address, registries and their index schedules).",
)
@click.option("--listen", help="Override the listen address, e.g. 0.0.0.0:50051.")
@reports_errors
def serve_command(config_file: Path | None, listen: str | None) -> None:
    """Run the xregistry gRPC service (CatalogService, health, reflection) and index
    registries on their schedules.

    \b
    Configuration (all keys optional):
      database: sqlite:///xregistry.db        # or postgresql://user@host/db
      listen: 127.0.0.1:50051
      registries:
        - name: local
          host: localhost:5000
          repositories: ["acme/*"]            # globs; plain names need no _catalog
          credentials: env:REG_USER:REG_PASS  # or file:/path, docker-config
          index: {interval: 15m}              # or {cron: "*/15 * * * *"}
    """
    from catalog.serve import serve

    config = load_config(config_file) if config_file else ServeConfig()
    if listen:
        config = config.model_copy(update={"listen": listen})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(config))
