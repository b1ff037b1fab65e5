"""``xregistry digest REF``: the digest alone, as ``crane digest`` prints it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from catalog.cli.errors import reports_errors
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.output import echo_json, output_option
from catalog.cli.platforms import platform_option
from catalog.errors import NotFound
from catalog.oci.reference import parse_reference


@click.command("digest")
@click.argument("reference")
@platform_option
@output_option
@registry_options
@reports_errors
def digest_command(
    reference: str,
    platform: str | None,
    output: str,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    token_realms: tuple[str, ...],
) -> None:
    """Print the digest of the manifest REFERENCE names, live from the registry or layout.

    A tag is resolved with a HEAD request (no manifest download) unless --platform needs the
    index. No catalog is used (and --server is ignored).

    \b
    Examples:
      xregistry digest localhost:5000/shop/api:1.4
      xregistry digest localhost:5000/shop/api:1.4 --platform linux/amd64
      xregistry digest oci:examples/slsa-container
    """
    from catalog.oci.describe import open_reference
    from catalog.oci.platforms import resolved

    ref = parse_reference(reference)
    options = build_registry_options(insecure, ca_file, username, token_realms)

    async def find() -> tuple[str, str, int]:
        if platform is None:
            async with open_reference(ref, options) as (repo, name):
                found = await repo.resolve(name)
            if found is None:
                raise NotFound(f"{reference} is not in the registry")
            return str(found.digest), found.media_type, found.size
        async with resolved(ref, options, platform) as (_, manifest):
            return str(manifest.digest), manifest.media_type, manifest.size

    digest, media_type, size = asyncio.run(find())
    if output == "json":
        echo_json({"reference": reference, "digest": digest, "mediaType": media_type, "size": size})
    else:
        click.echo(digest)
