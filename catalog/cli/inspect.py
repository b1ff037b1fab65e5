"""``xregistry inspect REF``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from catalog.cli.errors import reports_errors
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.output import console
from catalog.cli.platforms import platform_option, resolved
from catalog.oci.attachments import find_attachments
from catalog.oci.describe import Inspection, inspect
from catalog.oci.options import RegistryOptions
from catalog.oci.reference import Reference, parse_reference


def render(result: Inspection, console: Console) -> None:
    doc = result.to_json()
    summary = Table.grid(padding=(0, 2))
    summary.add_column(no_wrap=True)
    summary.add_column(overflow="fold")
    for key in ("reference", "digest", "mediaType", "size", "artifactType"):
        if doc[key] is not None:
            summary.add_row(f"[bold]{key}[/]", str(doc[key]))
    console.print(summary)
    if doc["platforms"]:
        table = Table(title="platforms", title_justify="left")
        for column in ("os", "architecture", "variant", "digest"):
            table.add_column(column, overflow="fold")
        for p in doc["platforms"]:
            table.add_row(p["os"], p["architecture"], p["variant"] or "", p["digest"])
        console.print(table)
    if doc["referrers"]:
        table = Table(title="referrers", title_justify="left")
        for column in ("scheme", "artifactType", "digest", "subject"):
            table.add_column(column, overflow="fold")
        for r in doc["referrers"]:
            table.add_row(r["scheme"], r["artifactType"] or "", r["digest"], r["subject"])
        console.print(table)
    else:
        console.print("no referrers found")


async def _inspect_platform(ref: Reference, options: RegistryOptions, platform: str) -> Inspection:
    async with resolved(ref, options, platform) as (repo, manifest):
        return Inspection(str(ref), manifest, await find_attachments(repo, manifest))


@click.command("inspect")
@click.argument("reference")
@click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@platform_option
@registry_options
@reports_errors
def inspect_command(
    reference: str,
    output: str,
    platform: str | None,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    token_realms: tuple[str, ...],
) -> None:
    """Resolve REFERENCE and show its digest, platforms and referrers.

    REFERENCE is a registry image (HOST/REPO:TAG, HOST/REPO@sha256:…, or a Docker Hub name such
    as ubuntu:24.04) or an OCI image-layout directory (oci:PATH, oci:PATH:TAG).

    Referrers are looked up by every scheme: the OCI referrers API, its sha256-<hex> fallback
    tag, cosign's .sig/.att/.sbom tags, and attestations inside an image index.

    \b
    Examples:
      xregistry inspect localhost:5000/shop/api:1.4
      xregistry inspect oci:./my-layout --output json
      xregistry inspect localhost:5000/shop/api:1.4 --platform linux/arm64
    """
    ref = parse_reference(reference)
    options = build_registry_options(insecure, ca_file, username, token_realms)
    result = asyncio.run(
        inspect(ref, options) if platform is None else _inspect_platform(ref, options, platform)
    )
    if output == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        render(result, console())
