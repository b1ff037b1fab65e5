"""Finding what is attached to a manifest, by every scheme registries use.

- ``referrers-api``: the OCI 1.1 referrers endpoint;
- ``fallback-tag``: the ``<alg>-<hex>`` tag index that stands in for it;
- ``cosign-tag``: cosign's ``sha256-<hex>.sig|.att|.sbom`` tags;
- ``in-index``: BuildKit attestation manifests inside an image index;
- ``layout-index``: referrers listed in an image layout's ``index.json``;
- ``subject-field``: a tagged manifest's own ``subject`` (found by the crawler, catalog.index).
"""

import asyncio
from typing import NamedTuple

from catalog.oci import mediatypes as mt
from catalog.oci.digest import Digest, is_digest
from catalog.oci.errors import RegistryError
from catalog.oci.manifest import Descriptor, Manifest
from catalog.oci.repository import Repository, all_tags

COSIGN_SUFFIXES = ("sig", "att", "sbom")
# A listing for find_attachments(tags=) is worth it only while short and quick: a registry paging
# one tag at a time would have thousands of requests sent before the first attachment is looked
# for. Past either bound each cosign tag is asked for instead (three requests a manifest).
LISTED_TAGS_MAX = 10_000
LISTING_SECONDS = 10.0


class Attachment(NamedTuple):  # not a dataclass: no code generated at a command's start
    subject: Digest
    descriptor: Descriptor
    scheme: str
    artifact_type: str | None


def cosign_tag(subject: Digest, suffix: str) -> str:
    return f"{subject.fallback_tag()}.{suffix}"


def attachment_type(manifest: Manifest) -> str | None:
    """A useful kind for an attachment: its artifact type, else its first layer's media type.

    cosign's tag-scheme manifests carry a generic image config, so the layer says more.
    """
    generic = {mt.OCI_CONFIG, mt.DOCKER_CONFIG, None}
    if manifest.effective_artifact_type not in generic:
        return manifest.effective_artifact_type
    if manifest.layers:
        return manifest.layers[0].media_type
    return manifest.effective_artifact_type


def in_index_attestations(index: Manifest) -> list[Attachment]:
    """BuildKit attestation manifests inside an index, attached to the image they name."""
    found = []
    for d in index.manifests:
        target = d.attests
        if target and is_digest(target):  # one that names no image is attached to none
            found.append(
                Attachment(Digest.parse(target), d, "in-index", "application/vnd.in-toto+json")
            )
    return found


async def listed_tags(
    repo: Repository, most: int = LISTED_TAGS_MAX, within: float = LISTING_SECONDS
) -> set[str] | None:
    """The repository's tags, for :func:`find_attachments`; None when the registry refuses to
    list them (it still answers for each tag), lists more than ``most`` or takes longer than
    ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            found = await all_tags(repo, most)
    except (RegistryError, TimeoutError):
        return None
    return None if found is None else set(found)


async def find_attachments(
    repo: Repository, manifest: Manifest, tags: set[str] | None = None
) -> list[Attachment]:
    """Everything attached to ``manifest`` (and, for an index, the attestations inside it).

    ``tags``, when the caller already listed the repository, saves a request per cosign tag.
    """
    digest = manifest.digest
    referrers = await repo.referrers(digest)
    found = [
        Attachment(digest, d, referrers.scheme, d.artifact_type) for d in referrers.descriptors
    ]

    async def cosign(suffix: str) -> Attachment | None:
        tag = cosign_tag(digest, suffix)
        if tags is not None and tag not in tags:
            return None
        if await repo.resolve(tag) is None:
            return None
        attached = await repo.get_manifest(tag)
        return Attachment(digest, attached.descriptor(), "cosign-tag", attachment_type(attached))

    for attachment in await asyncio.gather(*(cosign(s) for s in COSIGN_SUFFIXES)):
        if attachment is not None:
            found.append(attachment)
    if manifest.is_index:
        found.extend(in_index_attestations(manifest))
    return found
