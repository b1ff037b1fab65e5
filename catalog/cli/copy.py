"""``xregistry copy SRC DST``: one image, byte for byte, with what is attached to it, between
registries and image layouts (``crane copy``, ``oras cp --from-oci-layout``, ``skopeo copy``).

This is how the example layout gets into a registry: ``xregistry copy
oci:examples/slsa-container localhost:5000/demo/app:v1``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from catalog.cli.errors import reports_errors
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.output import echo_json, output_option
from catalog.cli.platforms import platform_option
from catalog.errors import InvalidArgument

# Blobs sent at once per manifest.
_TRANSFERS = 4

if TYPE_CHECKING:
    from catalog.oci.copy import CopyStats
    from catalog.oci.manifest import Manifest
    from catalog.oci.repository import Repository


async def _attachments(src: Repository, dst: Repository, image: Manifest, stats: CopyStats) -> int:
    """Copy what is attached to ``image`` and to every manifest under it, and what is attached
    to those attachments, as replication does (cosign tags keep their tag; referrers go by
    digest, and a registry without the referrers API gets the fallback index). BuildKit
    attestations inside an index came with it. Returns how many attachments were handled."""
    from catalog.oci.copy import Copier
    from replication.referrers import ReferrerCopier, subject_claims
    from replication.rules import ALL_KINDS, ConflictPolicy

    # The referrers step writes each fallback index once, as the source has it.
    transfers = asyncio.Semaphore(_TRANSFERS)
    copier = Copier(src, dst, stats=stats, fallback_index=False, transfers=transfers)
    referrers = ReferrerCopier(
        copier,
        listing=None,  # one image: each attachment tag is asked for, not the whole repository
        kinds=ALL_KINDS,
        conflict=ConflictPolicy.OVERWRITE,  # like the image's own tag
        subjects=subject_claims(),
    )
    await referrers.copy_all(image)
    return stats.referrers_copied + stats.referrers_skipped


@click.command("copy")
@click.argument("source")
@click.argument("destination")
@click.option(
    "--referrers/--no-referrers",
    default=True,
    show_default=True,
    help="Copy signatures, attestations and SBOMs attached to the image (and to an index's "
    "images) too.",
)
@platform_option
@output_option
@registry_options
@reports_errors
def copy_command(
    source: str,
    destination: str,
    referrers: bool,
    platform: str | None,
    output: str,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    token_realms: tuple[str, ...],
) -> None:
    """Copy the image SOURCE to DESTINATION, digests unchanged.

    Either side is a registry (HOST/REPO:TAG, HOST/REPO@sha256:…) or an image layout
    (oci:PATH[:TAG|@sha256:…]; a destination layout is created). SOURCE oci:PATH alone is the
    layout's only image. DESTINATION gets SOURCE's tag when it names none. Blobs are checked
    against their digests before anything lands; what the destination has is skipped. The
    registry options apply to both registries. No catalog is used (and --server is ignored).

    \b
    Examples:
      xregistry copy oci:examples/slsa-container localhost:5000/demo/app:v1
      xregistry copy localhost:5000/shop/api:1.4 oci:./backup
      xregistry copy reg-a:5000/shop/api:1.4 reg-b:5000/shop/api --platform linux/amd64
    """
    from catalog.oci.copy import CopyStats, copy_manifest
    from catalog.oci.describe import open_reference
    from catalog.oci.platforms import resolved
    from catalog.oci.reference import parse_reference

    src_ref = parse_reference(source, default_tag=None)
    dst_ref = parse_reference(destination, default_tag=None)
    if dst_ref.digest is not None and dst_ref.tag is None:
        raise InvalidArgument(
            f"{destination!r}: a destination names a tag (or nothing), not a digest"
        )
    options = build_registry_options(insecure, ca_file, username, token_realms)
    stats = CopyStats()

    async def run() -> tuple[str, int]:
        async with (
            resolved(src_ref, options, platform) as (src, manifest),
            open_reference(dst_ref, options, create=True) as (dst, _),
        ):
            tag = dst_ref.tag or src_ref.tag
            copied = await _attachments(src, dst, manifest, stats) if referrers else 0
            # The image last: whoever watches the tag sees it with its attachments in place.
            await copy_manifest(src, dst, manifest, tag, stats, parallel=_TRANSFERS)
            return str(manifest.digest), copied

    digest, attached = asyncio.run(run())
    summary: dict[str, Any] = {
        "source": source,
        "destination": destination,
        "digest": digest,
        "referrers": attached,
        **stats.as_dict(),
    }
    if output == "json":
        echo_json(summary)
    else:
        click.echo(
            f"copied {source} → {destination} ({digest}): {stats.manifests_copied} manifests "
            f"and {stats.blobs_copied} blobs ({stats.bytes_copied} bytes) sent, "
            f"{stats.manifests_skipped + stats.blobs_skipped} already there; "
            f"{attached} attachments"
        )
