"""Destination tags: whether one must be written, under the rule's conflict policy."""

from __future__ import annotations

from catalog.oci.manifest import Descriptor, Manifest
from catalog.oci.repository import Repository
from replication.report import TagConflict
from replication.rules import ConflictPolicy


async def needs_tag(dst: Repository, manifest: Manifest, tag: str, policy: ConflictPolicy) -> bool:
    """False when ``dst`` has ``tag`` on ``manifest`` already; raises TagConflict when it points
    elsewhere and ``policy`` says to report rather than overwrite."""
    return tag_outdated(await dst.resolve(tag), dst, manifest, tag, policy)


def tag_outdated(
    current: Descriptor | None,
    dst: Repository,
    manifest: Manifest,
    tag: str,
    policy: ConflictPolicy,
) -> bool:
    """:func:`needs_tag` with ``dst``'s ``tag`` resolved already (``current``)."""
    if current is not None and current.digest == manifest.digest:
        return False
    if current is not None and policy is ConflictPolicy.REPORT:
        raise TagConflict(
            f"{dst.name}:{tag} points to {current.digest}, the source's to {manifest.digest}"
        )
    return True
