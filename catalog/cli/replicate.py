"""``xregistry replicate``: copy images between registries with everything attached to them.

``once`` copies ad hoc between hosts; ``rule``, ``run`` and ``status`` manage stored rules
between the catalog's registries, their runs and how far behind each destination is (on the
database, or on a running server with ``--server``). Heavy imports (the store, gRPC) happen in
the commands that need them, so ``once`` starts fast.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from catalog.cli import quick_exit
from catalog.cli.errors import EXIT_ERROR, reports_errors
from catalog.cli.lazy_group import LazyGroup
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.output import echo_json, output_option, progress_bar
from catalog.cli.replicate_options import (
    Selection,
    endpoints,
    parallel_option,
    parse_rename,
    rename_option,
    selection_options,
    split_location,
)
from catalog.oci.client import RegistryOptions
from replication.engine import replicate
from replication.report import ProgressCallback, RunReport
from replication.rules import (
    ConflictPolicy,
    RepositoryFilter,
    Rewrite,
    Rule,
    parse_kinds,
)


# The stored rules' commands (with their views and the runs' statuses) are imported when one
# runs: `once` starts without them.
@click.group(
    "replicate",
    cls=LazyGroup,
    lazy={
        "rule": "catalog.cli.replicate_rules:rule_group",
        "run": "catalog.cli.replicate_rules:run_command",
        "status": "catalog.cli.replicate_rules:status_command",
    },
)
def replicate_group() -> None:
    """Copy images between registries, digests intact, with signatures, attestations and SBOMs.

    \b
    Ad hoc, between hosts:
      xregistry replicate once --from reg-a:5000/acme/** --to reg-b:5000/mirror
    Stored rules between the catalog's registries (run by `xregistry serve`, or now):
      xregistry replicate rule add acme --from reg-a/acme/** --to reg-b/mirror --interval 15m
      xregistry replicate run acme --wait
      xregistry replicate status
    """


# -- once --------------------------------------------------------------------------------------


@replicate_group.command("once")
@endpoints("HOST[:PORT], or oci:DIR for image layouts")
@rename_option
@selection_options
@parallel_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read both sides and print what would be copied (images, tags, referrers, bytes); "
    "write nothing.",
)
@registry_options
@output_option
@reports_errors
def once_command(
    source: str,
    destination: str,
    rename: str | None,
    selection: Selection,
    parallel: int,
    dry_run: bool,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    token_realms: tuple[str, ...],
    output: str,
) -> None:
    """Run an ad-hoc replication once, in the foreground, and summarise it.

    Manifests are copied byte for byte, so every digest is the same at the destination.
    What the destination has is skipped; referrers (referrers API or fallback index), cosign
    .sig/.att/.sbom tags and in-index attestations come along. Exits 1 when any image failed
    or, with --conflict report, met a conflicting tag (with --dry-run: would fail).

    Either side may be oci:DIR, a directory of OCI image layouts, one per repository at
    DIR/<repository> (written as needed); a DIR that is itself a layout is one repository named
    after its last path component.

    \b
      xregistry replicate once --from registry-a:5000/acme/** --to registry-b:5000/mirror
      xregistry replicate once --from registry-a:5000/acme/** --to registry-b:5000 \\
          --rename 'acme/(?P<team>[^/]+)/(.*)=mirror/\\g<team>-\\2'
      xregistry replicate once --from registry-a:5000/acme/** --to oci:backup --dry-run
      xregistry replicate once --from oci:backup --to registry-b:5000
    """
    # Its files are closed and its threads joined when it returns: the process may end at once.
    quick_exit.allow()
    src_host, pattern = split_location(source, "--from")
    dst_host, prefix = split_location(destination, "--to")
    src_host, dst_host = _layout_path(src_host), _layout_path(dst_host)
    renamed = parse_rename(rename, prefix)
    rewrite = (
        Rewrite(pattern=renamed[0], replacement=renamed[1])
        if renamed is not None
        else Rewrite(prefix=prefix)
    )
    rule = Rule(
        source=src_host,
        destination=dst_host,
        repositories=RepositoryFilter(include=(pattern or "**",), exclude=selection.exclude),
        rewrite=rewrite,
        tags=selection.tag_filter(),
        referrers=parse_kinds(selection.referrers),
        conflict=ConflictPolicy(selection.conflict),
    )
    options = build_registry_options(insecure, ca_file, username, token_realms)
    report = _run(rule, options, parallel, dry_run, progress=output != "json")
    if output == "json":
        echo_json(report.as_dict())
    else:
        from catalog.cli.replicate_views import dry_run_summary, summary

        (dry_run_summary if dry_run else summary)(report)
    if not report.ok:
        click.get_current_context().exit(EXIT_ERROR)


def _layout_path(location: str) -> str:
    """``oci:ROOT[/PATH]`` through the config file's named layout roots (``secrets.layouts``);
    any other ``oci:PATH`` is the user's own directory. Registries are kept as they are."""
    if not location.startswith("oci:"):
        return location
    from catalog.cli.context import local_secrets

    return f"oci:{local_secrets().layout(location)}"


def _run(
    rule: Rule, options: RegistryOptions, parallel: int, dry_run: bool, *, progress: bool
) -> RunReport:
    def run(on_progress: ProgressCallback | None = None) -> RunReport:
        return asyncio.run(
            replicate(
                rule,
                source_options=options,
                destination_options=options,
                parallel=parallel,
                dry_run=dry_run,
                on_progress=on_progress,
            )
        )

    if not progress:
        return run()
    from catalog.cli.replicate_views import progress_detail  # tables only

    with progress_bar(f"{rule.source} → {rule.destination}") as show:
        return run(
            lambda r: show(
                r.images_total,
                r.images_done,
                progress_detail(r.counts.bytes_copied, r.images.failed),
            )
        )
