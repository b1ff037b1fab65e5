"""What a reference resolves to and what is attached to it: the data of ``xregistry inspect``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from catalog.oci.attachments import Attachment, find_attachments
from catalog.oci.client import RegistryClient, RegistryOptions
from catalog.oci.layout import LayoutRepository
from catalog.oci.manifest import Manifest
from catalog.oci.platforms import platform_images, resolved
from catalog.oci.reference import ImageReference, LayoutReference, Reference
from catalog.oci.repository import RemoteRepository, Repository


@dataclass(frozen=True, slots=True)
class Inspection:
    reference: str
    manifest: Manifest
    attachments: list[Attachment] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "reference": self.reference,
            "digest": str(m.digest),
            "mediaType": m.media_type,
            "size": m.size,
            "artifactType": m.artifact_type,
            "platforms": [
                {
                    "os": d.platform.os,
                    "architecture": d.platform.architecture,
                    "variant": d.platform.variant,
                    "digest": str(d.digest),
                }
                for d in platform_images(m)
                if d.platform is not None
            ],
            "referrers": [
                {
                    "digest": str(a.descriptor.digest),
                    "artifactType": a.artifact_type,
                    "mediaType": a.descriptor.media_type,
                    "scheme": a.scheme,
                    "subject": str(a.subject),
                }
                for a in self.attachments
            ],
        }


@contextlib.asynccontextmanager
async def open_reference(
    reference: Reference, options: RegistryOptions | None = None, *, create: bool = False
) -> AsyncIterator[tuple[Repository, str]]:
    """The repository a reference lives in, and the tag or digest to ask it for. ``create``
    (to write into) makes a missing layout, and ``oci:PATH`` alone then asks for "" (nothing)."""
    if isinstance(reference, LayoutReference):
        layout = LayoutRepository(reference.path, create=create)
        ref = str(reference.digest) if reference.digest else reference.tag
        yield layout, ref or ("" if create else layout.default_ref())
        return
    assert isinstance(reference, ImageReference)
    async with RegistryClient(reference.registry, options) as client:
        yield RemoteRepository(client, reference.repository), reference.ref


async def inspect(
    reference: Reference, options: RegistryOptions | None = None, platform: str | None = None
) -> Inspection:
    """The manifest ``reference`` names (the ``platform``'s image of an index when given) and
    what is attached to it."""
    async with resolved(reference, options, platform) as (repo, manifest):
        attachments = await find_attachments(repo, manifest)
    return Inspection(str(reference), manifest, attachments)
