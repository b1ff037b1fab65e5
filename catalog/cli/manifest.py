"""``xregistry manifest REF``: a manifest's exact bytes, as ``crane manifest`` and ``skopeo
inspect --raw`` print them (their digest is the manifest's digest)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from catalog.cli.errors import reports_errors
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.platforms import platform_option
from catalog.oci.platforms import resolved
from catalog.oci.reference import parse_reference


@click.command("manifest")
@click.argument("reference")
@platform_option
@registry_options
@reports_errors
def manifest_command(
    reference: str,
    platform: str | None,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    token_realms: tuple[str, ...],
) -> None:
    """Print the manifest REFERENCE names, byte for byte, live from the registry or layout.

    REFERENCE is HOST/REPO:TAG, HOST/REPO@sha256:…, or oci:PATH[:TAG|@sha256:…]. The bytes are
    checked against their digest before they are printed. No catalog is used (and --server is
    ignored).

    \b
    Examples:
      xregistry manifest localhost:5000/shop/api:1.4 | jq .
      xregistry manifest localhost:5000/shop/api:1.4 --platform linux/arm64
      xregistry manifest localhost:5000/shop/api:1.4 | sha256sum   # the digest
    """
    ref = parse_reference(reference)
    options = build_registry_options(insecure, ca_file, username, token_realms)

    async def fetch() -> bytes:
        async with resolved(ref, options, platform) as (_, manifest):
            return manifest.raw

    raw = asyncio.run(fetch())
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
