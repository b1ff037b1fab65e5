"""A platform (``os/arch[/variant]``): one image of an index, as crane, skopeo and docker pick it.

An index's entries are matched by os, architecture and (when given) variant; BuildKit's
attestation entries are never chosen. ``linux/arm64`` also matches ``linux/arm64/v8`` (arm64
has one variant), but a choice between several images (``linux/arm`` among v6 and v7) is
refused, naming them. A manifest that is not an index is its own only image: the platform in
its config must match.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from catalog.errors import InvalidArgument, NotFound
from catalog.oci import boundedjson
from catalog.oci import mediatypes as mt

if TYPE_CHECKING:
    from catalog.oci.manifest import Descriptor, Manifest
    from catalog.oci.options import RegistryOptions
    from catalog.oci.reference import Reference
    from catalog.oci.repository import Repository

_PART = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CONFIG_LIMIT = 1024 * 1024  # an image config's platform fields are near its start; cap reads


@dataclass(frozen=True, slots=True)
class PlatformChoice:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> PlatformChoice:
        parts = text.split("/")
        if not 2 <= len(parts) <= 3 or not all(_PART.fullmatch(p) for p in parts):
            shown = repr(text) if len(text) <= 80 else f"of {len(text)} characters"
            raise InvalidArgument(
                f"invalid platform {shown}: write os/architecture[/variant], e.g. linux/amd64"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, os: str | None, architecture: str | None, variant: str | None) -> bool:
        if (os, architecture) != (self.os, self.architecture):
            return False
        if self.variant is None:
            return True
        return variant == self.variant or (
            variant is None and (self.architecture, self.variant) == ("arm64", "v8")
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def _label(d: Descriptor) -> str:
    return str(d.platform)


def platform_images(index: Manifest) -> list[Descriptor]:
    """The entries of ``index`` that are images for a platform (not BuildKit's attestations)."""
    return [d for d in index.manifests if d.platform is not None and not d.buildkit_attestation]


def choose(index: Manifest, platform: PlatformChoice) -> Descriptor:
    """The entry of ``index`` for ``platform``."""
    images = platform_images(index)
    found = [
        d
        for d in images
        if d.platform is not None
        and platform.matches(d.platform.os, d.platform.architecture, d.platform.variant)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise InvalidArgument(
            f"several images match {platform}: {', '.join(_label(d) for d in found)}; "
            "give the variant"
        )
    present = ", ".join(_label(d) for d in images) or "none"
    raise NotFound(f"no image for {platform} in the index (its platforms: {present})")


async def _config_platform(repo: Repository, manifest: Manifest) -> tuple[str | None, ...]:
    config = manifest.config
    if config is None or config.size > _CONFIG_LIMIT:
        return (None, None, None)
    data = b"".join([chunk async for chunk in repo.blob_chunks(config.digest, config.size)])
    try:
        doc = boundedjson.loads(data, max_depth=64, max_values=100_000)
    except ValueError:  # boundedjson.JSONRefused too: nested, too many values, not JSON
        return (None, None, None)
    if not isinstance(doc, dict):
        return (None, None, None)
    return tuple(
        value if isinstance(value := doc.get(key), str) else None
        for key in ("os", "architecture", "variant")
    )


async def select(repo: Repository, manifest: Manifest, platform: PlatformChoice) -> Manifest:
    """The image of ``manifest`` for ``platform``: an index's entry, or the image itself when
    its config says it is for that platform."""
    if manifest.is_index:
        return await repo.get_manifest(str(choose(manifest, platform).digest))
    if manifest.media_type not in mt.IMAGE_MANIFESTS:
        raise InvalidArgument("--platform selects an image of an index, not of an artifact")
    found = await _config_platform(repo, manifest)
    if not platform.matches(*found):
        shown = "/".join(p for p in found if p) or "no platform"
        raise NotFound(f"the image is for {shown}, not {platform}")
    return manifest


@contextlib.asynccontextmanager
async def resolved(
    reference: Reference, options: RegistryOptions | None, platform: str | None
) -> AsyncIterator[tuple[Repository, Manifest]]:
    """The repository ``reference`` lives in and its manifest (the ``platform``'s image of an
    index when given), verified against its digest."""
    from catalog.oci.describe import open_reference  # describe imports this module

    choice = PlatformChoice.parse(platform) if platform is not None else None
    async with open_reference(reference, options) as (repo, ref):
        manifest = await repo.get_manifest(ref)
        if choice is not None:
            manifest = await select(repo, manifest, choice)
        yield repo, manifest
