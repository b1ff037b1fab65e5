"""Which images a rule copies: source repositories, their destination names and image tags.

Tags that hold attachments (``sha256-<hex>`` fallback indexes, cosign ``sha256-<hex>.sig|.att|
.sbom``) are not images: they travel with their subjects. A repository's full tag listing is
kept so the copier knows which of them exist without asking for each.
"""

import asyncio
import re
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import NamedTuple

from catalog.errors import CatalogError
from catalog.oci import boundedjson
from catalog.oci import mediatypes as mt
from catalog.oci.errors import OCIError
from catalog.oci.manifest import Manifest
from catalog.oci.repository import Repository
from replication.rules import Rule, TagFilter
from replication.stores import Store

_ATTACHMENT_TAG = re.compile(r"[a-z0-9]+-[0-9a-f]{64}(?:\.(?:sig|att|sbom))?")
CREATED = "org.opencontainers.image.created"
_CONFIG_LIMIT = 1024 * 1024
_FRACTION = r"(\.\d{6})\d+"  # compiled at first use (re caches it): version rules only
_ON_LOOP_TAGS = 500  # listings longer than this are matched on a worker thread

ErrorSink = Callable[[str, str], None]  # (source repository, reason)


class RepositoryPlan(NamedTuple):
    source: str
    destination: str
    tags: tuple[str, ...]  # image tags to copy
    listing: frozenset[str]  # every tag the source repository had, attachments included


async def plan(source: Store, rule: Rule, on_error: ErrorSink) -> list[RepositoryPlan]:
    """Every selected repository with its selected tags, in the order of their names. A
    repository that cannot be listed or renamed, or whose destination name another selected
    repository's is too, is reported through ``on_error`` and left out."""
    destinations = await _selected(source, rule, on_error)
    found = await asyncio.gather(
        *(_one(source, rule, n, d, on_error) for n, d in destinations.items())
    )
    return [p for p in found if p is not None]


async def planned(
    source: Store, rule: Rule, on_error: ErrorSink
) -> AsyncGenerator[RepositoryPlan, None]:
    """:func:`plan`'s repositories each as soon as its tags are listed (in no set order): a
    run can start a repository's images while the others' listings are still on their way."""
    destinations = await _selected(source, rule, on_error)
    listings = [
        asyncio.ensure_future(_one(source, rule, n, d, on_error)) for n, d in destinations.items()
    ]
    try:
        for listed in asyncio.as_completed(listings):
            found = await listed
            if found is not None:
                yield found
    finally:  # a consumer that stops early (it failed) leaves no listing running
        for listing in listings:
            listing.cancel()
        await asyncio.gather(*listings, return_exceptions=True)


async def _selected(source: Store, rule: Rule, on_error: ErrorSink) -> dict[str, str]:
    names = rule.repositories.named()
    if names is None:
        names = [name async for name in source.repositories() if rule.repositories.matches(name)]
    return _destinations(sorted(set(names)), rule, on_error)


async def _one(
    source: Store, rule: Rule, name: str, destination: str, on_error: ErrorSink
) -> RepositoryPlan | None:
    try:
        listing = [tag async for tag in source.tags(name)]
        tags = await select_tags(source.repository(name), listing, rule.tags)
    except (OCIError, CatalogError) as exc:
        on_error(name, str(exc))
        return None
    return RepositoryPlan(name, destination, tuple(tags), frozenset(listing))


def _destinations(names: list[str], rule: Rule, on_error: ErrorSink) -> dict[str, str]:
    """Source repository → its destination name. Two sources renamed to one destination would
    overwrite each other's tags there: neither is copied."""
    renamed: dict[str, str] = {}
    for name in names:
        try:
            renamed[name] = rule.rewrite.apply(name)
        except CatalogError as exc:
            on_error(name, str(exc))
    sources: dict[str, list[str]] = {}
    for name, destination in renamed.items():
        sources.setdefault(destination, []).append(name)
    for destination, shared in sources.items():
        if len(shared) > 1:
            for name in shared:
                others = ", ".join(n for n in shared if n != name)
                on_error(
                    name,
                    f"rewrites to {destination}, as {others} does: repositories that would share "
                    "a destination are not copied",
                )
                del renamed[name]
    return renamed


def is_attachment_tag(tag: str) -> bool:
    """Whether ``tag`` is ``<alg>-<64 hex digits>``, a fallback index's, or that with
    ``.sig``, ``.att`` or ``.sbom``, cosign's (the whole tag: not one ending in a line end)."""
    return _ATTACHMENT_TAG.fullmatch(tag) is not None


def _admitted(listing: list[str], rule: TagFilter) -> list[str]:
    """The image tags of ``listing`` the rule admits, sorted; the newest by version when the
    rule keeps the newest by tag."""
    admitted = sorted(t for t in listing if not is_attachment_tag(t) and rule.admits(t))
    if rule.newest is None or len(admitted) <= rule.newest or rule.newest_by != "tag":
        return admitted
    return sorted(sorted(admitted, key=_version_order)[-rule.newest :])


async def select_tags(repo: Repository, listing: list[str], rule: TagFilter) -> list[str]:
    """The tags of ``listing`` the rule copies. Matching a registry's listing (any number of
    tags, regexes, versions) runs on a worker thread when it is long: on the event loop it
    would hold up every call the server answers."""
    if len(listing) > _ON_LOOP_TAGS:
        admitted = await asyncio.to_thread(_admitted, listing, rule)
    else:
        admitted = _admitted(listing, rule)
    if rule.newest is None or len(admitted) <= rule.newest or rule.newest_by == "tag":
        return admitted
    stamps = await asyncio.gather(*(created(repo, t) for t in admitted))
    by_time = dict(zip(admitted, stamps, strict=True))
    ordered = sorted(admitted, key=lambda t: (_timestamp(by_time[t]), _version_order(t)))
    return sorted(ordered[-rule.newest :])


def _version_order(tag: str) -> tuple[int, object]:
    # Tags that are versions sort by version, after those that are not (by name).
    from replication.versions import tag_version  # only rules keeping the newest N need it

    version = tag_version(tag)
    return (1, version) if version is not None else (0, tag)


def _timestamp(when: datetime | None) -> float:
    return when.timestamp() if when is not None else float("-inf")


async def created(repo: Repository, tag: str) -> datetime | None:
    """When the image was built: the ``created`` annotation, else its config's ``created``
    (for an index, its first platform image's)."""
    manifest = await repo.get_manifest(tag)
    if CREATED in manifest.annotations:
        return _parse_time(manifest.annotations[CREATED])
    image = await _first_image(repo, manifest)
    if image is None or image.config is None or image.config.size > _CONFIG_LIMIT:
        return None
    if CREATED in image.annotations:
        return _parse_time(image.annotations[CREATED])
    raw = b"".join([c async for c in repo.blob_chunks(image.config.digest, image.config.size)])
    try:  # bounded: a config nested a million deep must not stop the plan (RecursionError)
        stamp = boundedjson.loads(raw, max_depth=64, max_values=100_000).get("created")
    except (boundedjson.JSONRefused, AttributeError):
        return None
    return _parse_time(stamp) if isinstance(stamp, str) else None


async def _first_image(repo: Repository, manifest: Manifest) -> Manifest | None:
    if not manifest.is_index:
        return manifest
    for child in manifest.manifests:
        if child.media_type in mt.IMAGE_MANIFESTS and (
            child.platform is None or child.platform.os != "unknown"
        ):
            return await repo.get_manifest(str(child.digest))
    return None


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(re.sub(_FRACTION, r"\1", text.strip()))
    except ValueError:
        return None
