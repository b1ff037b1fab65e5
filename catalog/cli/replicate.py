"""``xregistry replicate``: copy images between registries with everything attached to them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from catalog.cli.errors import EXIT_ERROR, reports_errors
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.output import echo_json, output_option, table
from catalog.errors import InvalidArgument
from catalog.oci.client import RegistryOptions
from replication.engine import DEFAULT_PARALLEL, replicate
from replication.report import RunReport, Tally
from replication.rules import (
    ConflictPolicy,
    RepositoryFilter,
    Rewrite,
    Rule,
    TagFilter,
    parse_kinds,
)


@click.group("replicate")
def replicate_group() -> None:
    """Copy images between registries, digests intact, with signatures, attestations and SBOMs."""


def split_location(text: str, what: str) -> tuple[str, str]:
    """``REGISTRY[/PATH]`` → (registry, path); the path may be empty."""
    host, _, path = text.strip().partition("/")
    if not host or "://" in text or " " in text:
        raise InvalidArgument(f"{what} {text!r}: give REGISTRY[/PATH], e.g. registry.example:5000")
    return host, path.strip("/")


@replicate_group.command("once")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="REGISTRY[/REPO-GLOB]",
    help="Source registry and the repositories to copy: `acme/**` (any depth), `acme/*` (one "
    "level), `shop/api` (one repository, no catalog listing needed). Default: every repository.",
)
@click.option(
    "--to",
    "destination",
    required=True,
    metavar="REGISTRY[/PREFIX]",
    help="Destination registry; PREFIX goes before each source repository name.",
)
@click.option("--exclude", multiple=True, metavar="REPO-GLOB", help="Repositories to leave out.")
@click.option("--tags", "tag_globs", multiple=True, metavar="GLOB", help="Tags to copy (any of).")
@click.option("--tag-regex", metavar="REGEX", help="Tags to copy: the whole tag must match.")
@click.option("--semver", metavar="RANGE", help="Version tags in RANGE: `^1.2`, `>=1.2 <2`, `1.x`.")
@click.option("--newest", type=click.IntRange(min=1), metavar="N", help="Then keep the newest N.")
@click.option(
    "--newest-by",
    type=click.Choice(["tag", "created"]),
    default="tag",
    show_default=True,
    help="Newest by version order of the tags, or by the images' creation time.",
)
@click.option(
    "--referrers",
    default="all",
    show_default=True,
    metavar="all|none|KINDS",
    help="Attachments to copy: a comma list of signatures, attestations, sboms, other.",
)
@click.option(
    "--conflict",
    type=click.Choice([p.value for p in ConflictPolicy]),
    default=ConflictPolicy.OVERWRITE.value,
    show_default=True,
    help="When a destination tag points elsewhere: overwrite it, or leave it and report.",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=DEFAULT_PARALLEL,
    show_default=True,
    help="Images copied at once (each copies its blobs in parallel too).",
)
@registry_options
@output_option
@reports_errors
def once_command(
    source: str,
    destination: str,
    exclude: tuple[str, ...],
    tag_globs: tuple[str, ...],
    tag_regex: str | None,
    semver: str | None,
    newest: int | None,
    newest_by: str,
    referrers: str,
    conflict: str,
    parallel: int,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    output: str,
) -> None:
    """Run an ad-hoc replication once, in the foreground, and summarise it.

    Manifests are copied byte for byte, so every digest is the same at the destination.
    What the destination has is skipped; referrers (referrers API or fallback index), cosign
    .sig/.att/.sbom tags and in-index attestations come along. Exits 1 when any image failed
    or, with --conflict report, met a conflicting tag.

    \b
      xregistry replicate once --from registry-a:5000/acme/** --to registry-b:5000/mirror
    """
    src_host, pattern = split_location(source, "--from")
    dst_host, prefix = split_location(destination, "--to")
    rule = Rule(
        source=src_host,
        destination=dst_host,
        repositories=RepositoryFilter(include=(pattern or "**",), exclude=exclude),
        rewrite=Rewrite(prefix=prefix),
        tags=TagFilter(
            globs=tag_globs,
            regex=tag_regex,
            semver=semver,
            newest=newest,
            newest_by="created" if newest_by == "created" else "tag",
        ),
        referrers=parse_kinds(referrers),
        conflict=ConflictPolicy(conflict),
    )
    options = build_registry_options(insecure, ca_file, username)
    if output == "json":
        report = asyncio.run(
            replicate(rule, source_options=options, destination_options=options, parallel=parallel)
        )
        echo_json(report.as_dict())
    else:
        report = _with_progress(rule, options, parallel)
        _summary(report)
    if not report.ok:
        click.get_current_context().exit(EXIT_ERROR)


def _with_progress(rule: Rule, options: RegistryOptions, parallel: int) -> RunReport:
    # Imported here: scripts asking for JSON should not pay for it at start-up.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task(f"{rule.source} → {rule.destination}", total=None, detail="")

        def show(report: RunReport) -> None:
            bar.update(
                task,
                total=report.images_total,
                completed=report.images_done,
                detail=f"{_size(report.bytes.copied)} copied, {report.images.failed} failed",
            )

        return asyncio.run(
            replicate(
                rule,
                source_options=options,
                destination_options=options,
                parallel=parallel,
                on_progress=show,
            )
        )


def _summary(report: RunReport) -> None:
    def row(name: str, tally: Tally) -> tuple[str, int, int | str, int]:
        return (name, tally.copied, tally.skipped, tally.failed)

    blobs = row("blobs", report.blobs)
    if report.blobs_mounted:
        blobs = (*blobs[:2], f"{report.blobs.skipped} ({report.blobs_mounted} mounted)", blobs[3])
    click.echo(f"replicated {report.source} → {report.destination} in {report.seconds:.1f} s")
    table(
        None,
        ["", "copied", "skipped", "failed"],
        [
            row("images", report.images),
            row("manifests", report.manifests),
            blobs,
            (
                "bytes",
                *(
                    _size(n)
                    for n in (report.bytes.copied, report.bytes.skipped, report.bytes.failed)
                ),
            ),
            row("referrers", report.referrers),
        ],
    )
    if report.errors:
        table(
            "failed images",
            ["repository", "tag", "reason"],
            [
                (e.repository, e.tag or "*", f"conflict: {e.reason}" if e.conflict else e.reason)
                for e in report.errors
            ],
        )


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    value = count / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
