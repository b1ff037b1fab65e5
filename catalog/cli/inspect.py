"""``xregistry inspect REF``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from catalog.cli.errors import reports_errors
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.output import echo_json, fields, output_option, table
from catalog.cli.platforms import platform_option
from catalog.oci.describe import Inspection, inspect
from catalog.oci.reference import parse_reference


def render(result: Inspection) -> None:
    doc = result.to_json()
    keys = ("reference", "digest", "mediaType", "size", "artifactType")
    fields([(key, doc[key]) for key in keys if doc[key] is not None])
    if doc["platforms"]:
        table(
            "platforms",
            ["os", "architecture", "variant", "digest"],
            [(p["os"], p["architecture"], p["variant"], p["digest"]) for p in doc["platforms"]],
        )
    if doc["referrers"]:
        table(
            "referrers",
            ["scheme", "artifactType", "digest", "subject"],
            [(r["scheme"], r["artifactType"], r["digest"], r["subject"]) for r in doc["referrers"]],
        )
    else:
        click.echo("no referrers found")


@click.command("inspect")
@click.argument("reference")
@output_option
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
    result = asyncio.run(inspect(ref, options, platform))
    if output == "json":
        echo_json(result.to_json())
    else:
        render(result)
