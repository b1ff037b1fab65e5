"""Copying what is attached to a manifest, by every scheme, digests intact.

- Referrers API, or the ``sha256-<hex>`` fallback index, at the source: each referrer manifest
  (with its blobs) is pushed by digest. A destination with the referrers API lists it by
  itself; for one without, the fallback index is written once per subject: the source's index
  bytes as they are when the destination lists nothing the source lacks (so the digests match),
  else a merge that keeps every entry the destination had.
- cosign ``sha256-<hex>.sig|.att|.sbom`` tags are copied as tags.
- BuildKit attestations inside an index travel with the index: they are its children.

Referrers of referrers (a signature on an SBOM) follow, :data:`MAX_DEPTH` levels deep. What
the destination lists already is not fetched again, so referrers added at the source since the
last run are exactly what the next run copies. Replication runs and ``xregistry copy`` both copy
attachments here: a run knows the source repository's tags from its listing, a single copy asks
for each attachment tag instead.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from catalog.claims import Claims
from catalog.oci import mediatypes as mt
from catalog.oci.attachments import COSIGN_SUFFIXES, cosign_tag
from catalog.oci.client import fallback_index
from catalog.oci.copy import Copier, gather_all
from catalog.oci.digest import Digest
from catalog.oci.errors import BadResponse, NotInRegistry
from catalog.oci.manifest import Descriptor, Manifest, build_index, parse_manifest
from catalog.oci.repository import Repository
from replication.rules import ALL_KINDS, ConflictPolicy
from replication.tags import needs_tag

if TYPE_CHECKING:
    from catalog.formats.classify import AttachmentKind

# Levels of referrers followed below an image (a signature on an SBOM on an image is two):
# each level nests the next one's awaits, and a hostile chain hundreds deep would exhaust the
# interpreter's recursion limit; past this the image fails with one line.
MAX_DEPTH = 16
# (destination repository, subject): the subjects whose attachments a run copied. A failed
# copy leaves nothing behind, so the next image with that subject tries again.
SubjectClaims = Claims[tuple[str, Digest], None]


def subject_claims() -> SubjectClaims:
    return Claims(failures="retry")


class ReferrerCopier:
    """Copies the attachments of subjects from one repository to another."""

    def __init__(
        self,
        copier: Copier,
        *,
        listing: frozenset[str] | None,
        kinds: frozenset[AttachmentKind],
        conflict: ConflictPolicy,
        subjects: SubjectClaims,
    ) -> None:
        self.copier = copier
        self.src: Repository = copier.src
        self.dst: Repository = copier.dst
        # The source repository's tags: which attachment tags exist (None: not listed, each is
        # asked for; a missing one costs a request).
        self.listing = listing
        self.kinds = kinds
        self.conflict = conflict
        self.subjects = subjects  # shared by a run: one copy per subject however many tags
        self.stats = copier.stats  # referrers_* here; their manifests and blobs, the copier's

    async def copy_all(self, manifest: Manifest) -> None:
        """The attachments of ``manifest`` and of every manifest under it."""
        await _together([self.copy(s) for s in await subjects(self.src, manifest)])

    async def copy(self, subject: Digest, depth: int = 0) -> None:
        found: list[Digest] = []
        async with self.subjects.hold((self.dst.name, subject)) as held:
            if not held.owner:
                return
            # The cosign tags the listing says the source has not are not even scheduled.
            cosign = (s for s in COSIGN_SUFFIXES if self._listed(cosign_tag(subject, s)))
            await _together(
                [
                    self._by_reference(subject, found),
                    *(self._cosign(subject, suffix, found) for suffix in cosign),
                ]
            )
            held.set(None)
        if found and depth >= MAX_DEPTH:
            raise BadResponse(
                f"{self.src.name}: referrers of {subject} are nested deeper than {MAX_DEPTH}"
                " levels; not followed"
            )
        await _together([self.copy(referrer, depth + 1) for referrer in found])

    # -- referrers API and fallback index ------------------------------------------------------

    async def _by_reference(self, subject: Digest, found: list[Digest]) -> None:
        descriptors, source_index = await self._source_listing(subject)
        selected = [d for d in descriptors if await self._wanted(d)]
        if not selected:
            return
        found.extend(d.digest for d in selected)
        # What the destination lists is there already (a registry takes an index only with its
        # manifests): only the rest is fetched, and the listing is written once at the end.
        api = await self.dst.referrers(subject, fallback=False)
        has_api = api.scheme != "none"
        index = (
            None
            if has_api
            else await fallback_index(self.dst.get_manifest, subject, to_update=True)
        )
        listed = api.descriptors if has_api else list(index.manifests) if index else []
        missing = [d for d in selected if d.digest not in {e.digest for e in listed}]
        self.stats.referrers_skipped += len(selected) - len(missing)
        if not missing:
            return
        await gather_all(self._referrer(d) for d in missing)
        if not has_api:  # the fallback index is ours to keep: written once, never clobbered
            await self._write_index(subject, index, selected, source_index)

    async def _source_listing(self, subject: Digest) -> tuple[list[Descriptor], Manifest | None]:
        """The subject's referrers and, when they come from a fallback index, that index."""
        api = await self.src.referrers(subject, fallback=False)
        if api.scheme != "none":
            return api.descriptors, None
        if not self._listed(subject.fallback_tag()):
            return [], None
        index = await fallback_index(self.src.get_manifest, subject)
        return (list(index.manifests), index) if index is not None else ([], None)

    def _listed(self, tag: str) -> bool:
        """False when the listing says the source has no ``tag`` (without one: maybe it has)."""
        return self.listing is None or tag in self.listing

    async def _wanted(self, descriptor: Descriptor) -> bool:
        if self.kinds == ALL_KINDS:
            return True
        if not self.kinds:
            return False
        # Imported here: classification costs start-up time, and only rules that pick some
        # referrer kinds (not all, not none) classify anything.
        from catalog.formats.classify import descriptor_kind, manifest_kind

        kind = descriptor_kind(descriptor)
        if kind == "other":  # the descriptor alone does not say: the layers will
            kind = manifest_kind(await self.src.get_manifest(str(descriptor.digest)))
        return kind in self.kinds

    def _wanted_tagged(self, manifest: Manifest, suffix: str) -> bool:
        if self.kinds == ALL_KINDS:
            return True
        from catalog.formats.classify import COSIGN_SUFFIX_KIND, manifest_kind

        kind = manifest_kind(manifest)
        if kind == "other":  # the layers do not say: the tag's suffix does
            kind = COSIGN_SUFFIX_KIND[suffix]
        return kind in self.kinds

    async def _referrer(self, descriptor: Descriptor) -> None:
        try:
            copied = await self.copier.ensure(descriptor)
        except Exception:
            self.stats.referrers_failed += 1
            raise
        if copied:
            self.stats.referrers_copied += 1
        else:
            self.stats.referrers_skipped += 1

    async def _write_index(
        self,
        subject: Digest,
        current: Manifest | None,
        selected: list[Descriptor],
        source_index: Manifest | None,
    ) -> None:
        existing = list(current.manifests) if current is not None else []
        have = {d.digest for d in existing}
        if source_index is not None:
            theirs = {d.digest for d in source_index.manifests}
            # Every source entry is at the destination and nothing there would be lost.
            if have <= theirs and theirs == {d.digest for d in selected}:
                await self.dst.put_manifest(source_index, subject.fallback_tag())
                return
        merged = build_index([*existing, *(d for d in selected if d.digest not in have)])
        await self.dst.put_manifest(parse_manifest(merged, mt.OCI_INDEX), subject.fallback_tag())

    # -- cosign tags ---------------------------------------------------------------------------

    async def _cosign(self, subject: Digest, suffix: str, found: list[Digest]) -> None:
        tag = cosign_tag(subject, suffix)  # listed, or no listing to say (see copy)
        try:
            manifest = await self.src.get_manifest(tag)
        except NotInRegistry:
            return  # removed since the listing
        if not self._wanted_tagged(manifest, suffix):
            return
        found.append(manifest.digest)
        if not await needs_tag(self.dst, manifest, tag, self.conflict):
            self.stats.referrers_skipped += 1
            return
        try:
            await self.copier.copy(manifest, tag)
        except Exception:
            self.stats.referrers_failed += 1
            raise
        self.stats.referrers_copied += 1


async def _together(aws: list[Coroutine[Any, Any, None]]) -> None:
    """:func:`gather_all`, without its task group for one or none: most images have one
    subject and no attachment, and tasks for them were most of a no-change image's work."""
    if len(aws) > 1:
        await gather_all(aws)
    elif aws:
        await aws[0]


async def subjects(src: Repository, manifest: Manifest) -> list[Digest]:
    """The manifest and every manifest under it: each may have attachments of its own."""
    found = [manifest.digest]
    for child in manifest.manifests:
        if child.media_type in mt.INDEXES:
            found += await subjects(src, await src.get_manifest(str(child.digest)))
        else:
            found.append(child.digest)
    return found
