"""``xregistry serve``."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click
from click.core import ParameterSource

from catalog import logs
from catalog.app.config import ServeConfig, load_config, with_database_from
from catalog.cli.errors import reports_errors
from catalog.cli.log_options import given_log_options
from catalog.cli.output import echo_json, output_option
from catalog.errors import InvalidArgument

log = logging.getLogger(__name__)


@click.command("serve")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML configuration: database, listen address, registries and their index "
    "schedules, trust, replication rules.",
)
@click.option("--listen", help="Override the listen address, e.g. 0.0.0.0:50051.")
@click.option(
    "--migrate-only",
    is_flag=True,
    help="Bring the database's schema up to date (what serve does at start), print the "
    "revisions it was at and is at, and exit: before a rollout, in an init container, which no "
    "probe stops however long a migration takes (docs/deploy.md).",
)
@output_option
@reports_errors
def serve_command(
    config_file: Path | None, listen: str | None, migrate_only: bool, output: str
) -> None:
    """Run the xregistry gRPC services (CatalogService, GateService, ReplicationService,
    AuditService, health, reflection), index registries on their schedules, and work on
    replication runs.

    Any number of `serve` processes may share one PostgreSQL database: each scheduled
    replication run is created once, and each of its images is copied by one of them. At
    start each brings the schema up to date (they take turns); `--migrate-only` does that
    alone, on the same database (the file's, or $XREGISTRY_DATABASE_URL), and exits.

    \b
    Configuration (all keys optional):
      database: sqlite:///xregistry.db        # or postgresql://…; $XREGISTRY_DATABASE_URL wins
      listen: 127.0.0.1:50051                 # off loopback only with tls and auth
      tls: {cert_file: tls.crt, key_file: tls.key}   # re-read when they change
      metrics: {listen: 127.0.0.1:9102}       # GET /metrics (also tls:, replica:)
      log: {level: INFO, format: json}        # or --log-level, --log-format
      events: {listen: 127.0.0.1:8088}        # registry push notifications (docs/push-events.md)
      registries:
        - name: local
          host: localhost:5000
          repositories: ["acme/*"]            # globs; plain names need no _catalog
          credentials: robot                  # a name from secrets (never env:, file:)
          index: {interval: 15m}              # or {cron: "*/15 * * * *"}
      secrets:                                # what registries (file, API, CLI) may name
        credentials:                          # or file: PATH, or docker_config: true
          - {name: robot, env: "REG_USER:REG_PASS", hosts: ["localhost:5000"]}
        ca_files: [{name: corp, file: /etc/xregistry/corp-ca.pem}]
        layouts: [{name: local, path: /srv/layouts}]   # hosts oci:local/PATH
      replication:
        workers: 8                            # images this process copies at once
        lease: 30s                            # a dead process's work is taken over after it
        rules:                                # also: xregistry replicate rule add
          - name: to-eu
            source: local                     # registry names from above (or the catalog)
            destination: eu
            include: ["acme/**"]
            prefix: mirror                    # eu gets mirror/acme/...
            tags: {globs: ["release-*"]}      # also regex, semver, newest, newest_by
            referrers: all                    # or none, or signatures,attestations,sboms
            policy: prod                      # copy only what this gate policy allows
            schedule: {cron: "*/15 * * * *"}  # and/or on_index: true
      limits:                                 # defaults; see docs/limits.md
        registry: {json_limit: 8MiB, token_limit: 64KiB, request_timeout: 120s,
                   min_throughput: 16KiB, throughput_window: 30s, max_pages: 10000}
        index_run: 6h                         # one index run; replication_task: 2h
        decision_log: {capacity: 20000, batch: 500, stalled_after: 5s}
      health: {interval: 5s, timeout: 2s}     # NOT_SERVING while the database is down
    """
    root = click.get_current_context().find_root()
    if root.get_parameter_source("server") is ParameterSource.COMMANDLINE:
        # $XREGISTRY_SERVER is a client's setting and may well be in a server's environment.
        raise InvalidArgument("serve is the server: --server names one to talk to (see --listen)")
    if root.get_parameter_source("database") is ParameterSource.COMMANDLINE:
        # Ignored, it would have left serve (and a migration) on another database unsaid.
        raise InvalidArgument(
            "serve takes its database from --config's `database:` or $XREGISTRY_DATABASE_URL,"
            " not --database"
        )
    from catalog.daemon import serve

    config = load_config(config_file) if config_file else ServeConfig()
    config = with_database_from(os.environ, config)
    if listen:
        config = config.model_copy(update={"listen": listen})
    level, form = given_log_options(click.get_current_context())
    logs.configure(level or config.log.level, form or config.log.format)
    if root.get_parameter_source("database") is ParameterSource.ENVIRONMENT:
        log.warning(
            "$XREGISTRY_DATABASE names the other commands' database, not serve's: serve opens"
            " --config's `database:` or $XREGISTRY_DATABASE_URL"
        )
    if migrate_only:
        _migrate(config, output)
        return
    asyncio.run(serve(config))


def _migrate(config: ServeConfig, output: str) -> None:
    from catalog.daemon import migrate
    from catalog.store.db import HEAD_REVISION

    before = sorted(migrate(config))
    if output == "json":
        echo_json({"schema": HEAD_REVISION, "was": before})
    elif before == [HEAD_REVISION]:
        click.echo(f"database schema {HEAD_REVISION}: up to date")
    else:
        click.echo(f"database schema {HEAD_REVISION}: migrated from {', '.join(before) or 'none'}")
