"""Entry point: ``xregistry``."""

from __future__ import annotations

import sys

try:
    from catalog.lazy import collector_paused

    # Start-up imports (click's ~20 modules) with the collector paused, then frozen (see there).
    with collector_paused():
        from typing import IO, Any

        import click

        from catalog import __version__
        from catalog.cli.errors import EXIT_USAGE, shell_endings
        from catalog.cli.lazy_group import LazyGroup
        from catalog.cli.log_options import log_options
        from catalog.cli.output import FORMATS
except KeyboardInterrupt:
    # Ctrl-C while the command starts ends it as at any other time (cli.errors.shell_endings,
    # whose import may be what was interrupted): one line and 130, not a traceback.
    print("xregistry: error: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

# Command name → "module:attribute". A command's module is imported only when it runs (or for
# --help), so `xregistry replicate once` does not pay for the catalog's, gRPC's or sigstore's
# imports.
COMMANDS = {
    "admission": "catalog.cli.admission:admission_group",
    "artifact": "catalog.cli.artifact:artifact_group",
    "audit": "catalog.cli.audit:audit_command",
    "copy": "catalog.cli.copy:copy_command",
    "digest": "catalog.cli.digest:digest_command",
    "find": "catalog.cli.artifact:find_command",
    "health": "catalog.cli.health:health_command",
    "index": "catalog.cli.index:index_command",
    "inspect": "catalog.cli.inspect:inspect_command",
    "manifest": "catalog.cli.manifest:manifest_command",
    "policy": "catalog.cli.gate:policy_group",
    "registry": "catalog.cli.registry:registry_group",
    "replicate": "catalog.cli.replicate:replicate_group",
    "serve": "catalog.cli.serve:serve_command",
    "tag": "catalog.cli.artifact:tag_group",
    "tags": "catalog.cli.tags:tags_command",
    "tree": "catalog.cli.tree:tree_command",
    "trust": "catalog.cli.trust:trust_group",
    "verify": "catalog.cli.gate:verify_command",
}


class UsageFailure(click.ClickException):
    """A usage error of click's, told in the one line every failure gets: bad input, exit 2."""

    exit_code = EXIT_USAGE

    def __init__(self, error: click.ClickException) -> None:
        message = " ".join(error.format_message().split()).rstrip(".")
        if message[:2].istitle():  # "Missing argument …" → "missing argument …"; not "URL …"
            message = message[0].lower() + message[1:]
        ctx = getattr(error, "ctx", None)
        if ctx is not None:
            message = f"{message} (see {ctx.command_path} --help)"
        super().__init__(message)

    def show(self, file: IO[Any] | None = None) -> None:
        print(f"xregistry: error: {self.message}", file=file or sys.stderr)


class RootGroup(LazyGroup):
    """``xregistry``: every usage error of click's told as one line (:class:`UsageFailure`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """As the program: the console script and ``python -m`` call the group (``CliRunner``
        calls :meth:`main`). A command that allows it ends the process without the
        interpreter's teardown (catalog.cli.quick_exit)."""
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit as exc:
            from catalog.cli import quick_exit

            quick_exit.end(exc.code)
            raise

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            # Options are parsed here, and --help or --version printed: a Ctrl-C or a closed
            # stdout ends it as they end a command (click's own ending would be "Aborted!", 1).
            with shell_endings():
                return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # the help text, as asked for
        except click.ClickException as exc:
            raise UsageFailure(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with shell_endings():
                return super().invoke(ctx)
        except (click.exceptions.NoArgsIsHelpError, UsageFailure):
            raise
        except click.ClickException as exc:
            raise UsageFailure(exc) from None


@click.group(cls=RootGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xregistry")
@click.option(
    "--output",
    "-o",
    type=click.Choice(FORMATS),
    help="table or json for every command; a command's own --output wins [default: table].",
)
@click.option(
    "--database",
    envvar="XREGISTRY_DATABASE",
    help="Catalog database URL [default: sqlite:///xregistry.db; postgresql://… for production].",
)
@click.option(
    "--server",
    envvar="XREGISTRY_SERVER",
    help="Talk to a running `xregistry serve` at HOST:PORT instead of the database (then no "
    "database is opened; exit 7 when the server cannot be reached).",
)
@click.option(
    "--config",
    envvar="XREGISTRY_CONFIG",
    help="Without --server: a serve config file whose `secrets` name credentials, CA files "
    "and layout roots for `registry add`.",
)
# The channel's options: catalog/cli/channel.py reads them from the context.
@click.option(
    "--ca-file",
    envvar="XREGISTRY_CA_FILE",
    type=click.Path(dir_okay=False),
    help="With --server: TLS, the server's certificate checked against this CA (PEM).",
)
@click.option(
    "--cert",
    envvar="XREGISTRY_CERT",
    type=click.Path(dir_okay=False),
    help="With --server: a client certificate (PEM) for mTLS; TLS. Needs --key.",
)
@click.option(
    "--key",
    envvar="XREGISTRY_KEY",
    type=click.Path(dir_okay=False),
    help="With --cert: that certificate's private key (PEM).",
)
@click.option(
    "--token-file",
    envvar="XREGISTRY_TOKEN_FILE",
    type=click.Path(dir_okay=False),
    help="With --server: send the token in this file (or $XREGISTRY_TOKEN) as a bearer token.",
)
@log_options
def main(
    output: str | None,
    database: str | None,
    server: str | None,
    config: str | None,
    **_channel: str | None,
) -> None:
    """xregistry: catalog, verify and replicate what lives in OCI registries.

    \b
    Start here:
      xregistry registry add local localhost:5000
      xregistry index local
      xregistry artifact show localhost:5000/shop/api:1.4
      xregistry find pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1
    """


if __name__ == "__main__":
    main(prog_name="xregistry")  # as the console script names itself in usage and errors
