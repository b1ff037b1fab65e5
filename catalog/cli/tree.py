"""``xregistry tree REF``: what is attached to an image, nested, as ``oras discover -o tree`` and
``cosign tree`` show it: an index's platform images, and under each image its signatures,
attestations and SBOMs (found by every scheme), and what is attached to those in turn."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from catalog.cli.errors import reports_errors
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.output import console, echo_json, is_terminal, output_option
from catalog.cli.platforms import platform_option
from catalog.errors import CatalogError
from catalog.oci.platforms import platform_images

if TYPE_CHECKING:
    from catalog.oci.attachments import Attachment
    from catalog.oci.manifest import Manifest
    from catalog.oci.repository import Repository

# Attachments of attachments (a signature on an SBOM) are followed this deep, and a tree stops
# with an error past this many nodes: a hostile registry cannot make the walk endless.
DEPTH_MAX = 4
NODES_MAX = 2000


class TreeTooLarge(CatalogError):
    """More nodes than :data:`NODES_MAX`."""


@dataclass(slots=True)
class Node:
    digest: str
    media_type: str
    kind: str  # index, image, signature, attestation, sbom, other
    artifact_type: str | None = None
    platform: str | None = None
    scheme: str | None = None  # how an attachment was found: referrers API, fallback, cosign tag…
    manifests: list[Node] = field(default_factory=list)  # an index's platform images
    referrers: list[Node] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "mediaType": self.media_type,
            "kind": self.kind,
            "artifactType": self.artifact_type,
            "platform": self.platform,
            "scheme": self.scheme,
            "manifests": [n.to_json() for n in self.manifests],
            "referrers": [n.to_json() for n in self.referrers],
        }


class _Walk:
    def __init__(self, repo: Repository, tags: set[str] | None) -> None:
        self.repo = repo
        self.tags = tags  # None: each cosign tag is asked for
        self.nodes = 0

    def _count(self) -> None:
        self.nodes += 1
        if self.nodes > NODES_MAX:
            raise TreeTooLarge(f"the tree has more than {NODES_MAX} manifests")

    async def image(
        self, manifest: Manifest, depth: int = 0, inherited: list[Attachment] | None = None
    ) -> Node:
        """An image or index, its platform images, and their attachments."""
        from catalog.oci.attachments import find_attachments

        self._count()
        node = Node(
            str(manifest.digest), manifest.media_type, "index" if manifest.is_index else "image"
        )
        found = [
            *(inherited or []),
            *await find_attachments(self.repo, manifest, self.tags),
        ]
        by_subject: dict[str, list[Attachment]] = defaultdict(list)
        for attachment in found:
            by_subject[str(attachment.subject)].append(attachment)
        for d in platform_images(manifest):
            child = await self.repo.get_manifest(str(d.digest))
            # BuildKit's attestations sit in the index but are about one platform's image.
            sub = await self.image(child, depth + 1, by_subject.pop(str(d.digest), []))
            sub.platform = str(d.platform)
            node.manifests.append(sub)
        node.referrers = [
            await self.attachment(a, depth + 1) for a in by_subject.get(node.digest, [])
        ]
        return node

    async def attachment(self, attachment: Attachment, depth: int) -> Node:
        from catalog.formats.classify import manifest_kind
        from catalog.oci.attachments import find_attachments

        self._count()
        manifest = await self.repo.get_manifest(str(attachment.descriptor.digest))
        node = Node(
            str(manifest.digest),
            manifest.media_type,
            "other" if manifest.is_index else manifest_kind(manifest),
            attachment.artifact_type,
            scheme=attachment.scheme,
        )
        if depth < DEPTH_MAX:
            node.referrers = [
                await self.attachment(a, depth + 1)
                for a in await find_attachments(self.repo, manifest, self.tags)
                if a.subject == manifest.digest
            ]
        return node


def _label(node: Node) -> str:
    """:func:`_plain_label` for rich: a registry's text (artifact and media types) escaped, so
    it is never read as markup."""
    from rich.markup import escape

    head, _, rest = _plain_label(node).partition(" ")
    return f"[bold]{escape(head)}[/] {escape(rest)}"


def _plain_label(node: Node) -> str:
    if node.kind in ("index", "image"):
        return f"{node.platform or node.kind} {node.digest}"
    return f"{node.kind} {node.digest} {node.artifact_type or node.media_type} ({node.scheme})"


def _render(node: Node, title: str) -> None:
    if not is_terminal():
        # Piped: indented plain lines (two spaces a level), every digest whole on its line.
        def lines(child: Node, depth: int) -> None:
            click.echo("  " * depth + _plain_label(child))
            for n in (*child.manifests, *child.referrers):
                lines(n, depth + 1)

        click.echo(title)
        lines(node, 1)
        return
    from rich.markup import escape
    from rich.tree import Tree

    def add(parent: Tree, child: Node) -> None:
        branch = parent.add(_label(child))
        for n in (*child.manifests, *child.referrers):
            add(branch, n)

    root = Tree(f"{escape(title)}\n{_label(node)}")
    for n in (*node.manifests, *node.referrers):
        add(root, n)
    console().print(root)


@click.command("tree")
@click.argument("reference")
@platform_option
@output_option
@registry_options
@reports_errors
def tree_command(
    reference: str,
    platform: str | None,
    output: str,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    token_realms: tuple[str, ...],
) -> None:
    """Show REFERENCE with what is attached to it, nested, live from the registry or layout.

    Attachments are found by every scheme (the referrers API or its fallback tag, cosign's
    .sig/.att/.sbom tags, BuildKit attestations inside an index) and classified as signature,
    attestation, SBOM or other; attachments of attachments are followed up to 4 levels. No
    catalog is used (and --server is ignored).

    \b
    Examples:
      xregistry tree localhost:5000/shop/api:1.4
      xregistry tree localhost:5000/shop/api:1.4 --platform linux/amd64 -o json
    """
    from catalog.oci.attachments import listed_tags
    from catalog.oci.platforms import resolved
    from catalog.oci.reference import parse_reference

    ref = parse_reference(reference)
    options = build_registry_options(insecure, ca_file, username, token_realms)

    async def walk() -> Node:
        async with resolved(ref, options, platform) as (repo, manifest):
            return await _Walk(repo, await listed_tags(repo)).image(manifest)

    node = asyncio.run(walk())
    if output == "json":
        echo_json({"reference": reference, **node.to_json()})
    else:
        _render(node, reference)
