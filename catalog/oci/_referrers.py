"""A subject's referrers: the OCI 1.1 referrers API, else the ``<alg>-<hex>`` fallback tag index.

On a registry without the API, pushing a referrer also updates that index (distribution-spec 1.1
asks it of clients).
"""

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import NamedTuple
from urllib.parse import urlencode

from catalog.oci import mediatypes as mt
from catalog.oci._http import HTTPTransport, off_loop, repository_scopes
from catalog.oci.digest import Digest
from catalog.oci.errors import BadResponse, InvalidManifest, NotInRegistry
from catalog.oci.manifest import Descriptor, Manifest, build_index, parse_manifest

# A subject's referrers across the pages of the API, at most: each page is capped in bytes, but
# a registry may page on and on (one page of 4 MiB lists ~26,000 and holds ~16 MB parsed). As
# many as a fallback index within the manifest limit can list, whichever way they are found.
MAX_REFERRERS = 30_000

# The client's manifest endpoints, by (repository, tag or digest).
GetManifest = Callable[[str, str], Awaitable[Manifest]]
PutManifest = Callable[[str, Manifest, str], Awaitable[None]]


class Referrers(NamedTuple):
    """What a subject's referrers lookup found and how."""

    descriptors: list[Descriptor]
    scheme: str  # "referrers-api", "fallback-tag", "layout-index" or "none"


async def fallback_index(
    get_manifest: Callable[[str], Awaitable[Manifest]],
    subject: Digest,
    *,
    to_update: bool = False,
) -> Manifest | None:
    """The ``<alg>-<hex>`` referrers index of ``subject``, read with ``get_manifest``; a missing
    tag, or one that is not an index, means no referrers (spec).

    ``to_update``: the caller writes a new index over the tag, so only a missing tag is none.
    A tag holding what this cannot read, or a manifest that is not an index, is refused
    (:class:`InvalidManifest`) rather than taken for none and written over: what it held, and
    whatever its index listed, would be lost."""
    tag = subject.fallback_tag()
    try:
        index = await get_manifest(tag)
    except NotInRegistry:
        return None
    except InvalidManifest as exc:
        if to_update:
            raise InvalidManifest(
                f"the tag {tag} holds a manifest that cannot be read ({exc}); not written over"
            ) from None
        return None
    if index.media_type == mt.OCI_INDEX:
        return index
    if to_update:
        raise InvalidManifest(
            f"the tag {tag} holds a {index.media_type}, not a referrers index; not written over"
        )
    return None


class ReferrersEndpoint:
    """The referrers API of one registry host, and the fallback tag index standing in for it."""

    def __init__(
        self, transport: HTTPTransport, get_manifest: GetManifest, put_manifest: PutManifest
    ) -> None:
        self._transport = transport
        self._get_manifest = get_manifest
        self._put_manifest = put_manifest
        self.has_api: bool | None = None
        self._probing = asyncio.Lock()
        # Weak: a long-running service must not keep a lock per subject it ever touched.
        self._subject_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def find(
        self, repository: str, digest: Digest, artifact_type: str | None, fallback: bool
    ) -> Referrers:
        """See :meth:`~catalog.oci.client.RegistryClient.referrers`."""
        if self.has_api is None:
            # The first answer tells whether the registry has the API: concurrent callers wait
            # for it rather than each probing.
            async with self._probing:
                if self.has_api is None:
                    found = await self._from_api(repository, digest, artifact_type)
                    if found is not None:
                        return found
        if self.has_api:
            found = await self._from_api(repository, digest, artifact_type)
            if found is not None:
                return found
        if not fallback:
            return Referrers([], "none")
        index = await self._fallback_index(repository, digest)
        descriptors = list(index.manifests) if index else []
        if artifact_type:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return Referrers(descriptors, "fallback-tag")

    async def _from_api(
        self, repository: str, digest: Digest, artifact_type: str | None
    ) -> Referrers | None:
        transport = self._transport
        query = f"?{urlencode({'artifactType': artifact_type})}" if artifact_type else ""
        url: str | None = f"/v2/{repository}/referrers/{digest}{query}"
        descriptors: list[Descriptor] = []
        applied = True
        seen: set[str] = set()
        while url:
            scopes = repository_scopes(repository, "pull")
            async with transport.send("GET", url, scopes=scopes) as r:
                if r.status == 404 and not descriptors:
                    # A registry with the API answers an empty index, never 404 (spec 1.1).
                    self.has_api = False
                    return None
                await transport.expect(r, 200)
                self.has_api = True
                raw = await transport.read(r, "referrers index")
                try:
                    index = await off_loop(len(raw), parse_manifest, raw, mt.OCI_INDEX)
                except InvalidManifest as exc:  # an API answer, not a document of the image
                    raise BadResponse(
                        f"{transport.host}: the referrers index is unusable: {exc}",
                        url=str(r.url),
                    ) from exc
                applied = applied and "artifactType" in r.headers.get("OCI-Filters-Applied", "")
                url = transport.next_page(r, seen, "referrers index")
            descriptors.extend(index.manifests)
            if len(descriptors) > MAX_REFERRERS:
                raise BadResponse(
                    f"{transport.host}: more than {MAX_REFERRERS} referrers of {digest}; refused",
                    url=str(r.url),
                )
        if artifact_type and not applied:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return Referrers(descriptors, "referrers-api")

    async def _fallback_index(
        self, repository: str, digest: Digest, *, to_update: bool = False
    ) -> Manifest | None:
        return await fallback_index(
            partial(self._get_manifest, repository), digest, to_update=to_update
        )

    async def add_to_fallback_index(
        self, repository: str, subject: Digest, referrer: Manifest
    ) -> None:
        """List ``referrer`` in the fallback index of ``subject`` (one writer per subject)."""
        key = (repository, str(subject))
        lock = self._subject_locks.get(key)
        if lock is None:
            lock = self._subject_locks[key] = asyncio.Lock()
        async with lock:
            index = await self._fallback_index(repository, subject, to_update=True)
            existing = list(index.manifests) if index else []
            if any(d.digest == referrer.digest for d in existing):
                return
            raw = build_index([*existing, referrer.descriptor()])
            await self._put_manifest(
                repository, parse_manifest(raw, mt.OCI_INDEX), subject.fallback_tag()
            )
