"""Replicating one image: a source tag, its content, and everything attached to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from catalog.errors import CatalogError
from catalog.oci.copy import Copier, CopyLedger, CopyStats
from catalog.oci.digest import Digest
from catalog.oci.errors import OCIError
from catalog.oci.manifest import Descriptor, Manifest
from replication.planner import RepositoryPlan
from replication.referrers import ReferrerCopier, SubjectClaims, subject_claims
from replication.report import Action, ImageError, PlannedCopy, RunReport, TagConflict
from replication.rules import ConflictPolicy, Rule
from replication.stores import Store
from replication.tags import tag_outdated

TRANSFERS = 8  # blobs a run moves at once (see RunState.transfers)

# (source repository, tag, digest) → why the image may not be copied, or None when it may.
Admit = Callable[[str, str, Digest], Awaitable[str | None]]


class RunState:
    """What every image of one run shares. (A plain class: a dataclass's generated methods
    are compiled in every process that imports it, ~1 ms at a command's start-up.)"""

    __slots__ = (
        "admit",
        "destination",
        "dry_run",
        "ledger",
        "rule",
        "source",
        "subjects",
        "transfers",
    )

    def __init__(
        self,
        rule: Rule,
        source: Store,
        destination: Store,
        admit: Admit | None = None,
        dry_run: bool = False,  # the destination is a DryRunStore: count, never transfer
    ) -> None:
        self.rule = rule
        self.source = source
        self.destination = destination
        self.admit = admit
        self.dry_run = dry_run
        self.ledger = CopyLedger()
        self.subjects: SubjectClaims = subject_claims()
        # Blobs the run's images move at once, together: each may hold the destination's
        # buffer_limit bytes, whatever a source's images hold.
        self.transfers = asyncio.Semaphore(TRANSFERS)


async def replicate_image(
    state: RunState, plan: RepositoryPlan, tag: str, report: RunReport
) -> Digest | None:
    """Copy ``plan.source:tag`` and record the outcome in ``report``; → the image's digest
    (None when it could not be read). Never raises, so one failing image leaves the others be."""
    digest: Digest | None = None
    stats = CopyStats()
    src = state.source.repository(plan.source)
    dst = state.destination.repository(plan.destination)
    copier = Copier(
        src,
        dst,
        stats=stats,
        ledger=state.ledger,
        fallback_index=False,  # the referrers step writes each index once, as the source has it
        transfers=state.transfers,
        buffer_limit=state.destination.buffer_limit,
        transfer=not state.dry_run,
    )
    action: Action = "failed"
    reason = ""
    # Without admission the destination's tag is asked for beside the source's manifest, not
    # after it: both answers are needed whatever they say, and a no-change image then waits for
    # one round trip instead of two. With admission it is asked only for an admitted image.
    resolving = asyncio.ensure_future(dst.resolve(tag)) if state.admit is None else None
    try:
        manifest = await src.get_manifest(tag)
        digest = manifest.digest
        if state.admit is not None:
            denied = await state.admit(plan.source, tag, digest)
            if denied is not None:
                action, reason = "denied", denied
                report.images_denied += 1
                report.errors.append(ImageError(plan.source, tag, denied, outcome="denied"))
                return digest
        if resolving is None:  # admitted
            resolving = asyncio.ensure_future(dst.resolve(tag))
        moved = await _copy_tag(copier, manifest, tag, state.rule.conflict, resolving)
        if state.rule.referrers:
            referrers = ReferrerCopier(
                copier,
                listing=plan.listing,
                kinds=state.rule.referrers,
                conflict=state.rule.conflict,
                subjects=state.subjects,
            )
            await referrers.copy_all(manifest)
    except TagConflict as exc:
        action, reason = "conflict", str(exc)
        report.images.failed += 1
        report.errors.append(ImageError(plan.source, tag, reason, outcome="conflict"))
    except (OCIError, CatalogError) as exc:
        reason = str(exc)
        report.images.failed += 1
        report.errors.append(ImageError(plan.source, tag, reason))
    except Exception as exc:  # a bug or an unforeseen failure must not take the run down
        reason = f"{type(exc).__name__}: {exc}"
        report.images.failed += 1
        report.errors.append(ImageError(plan.source, tag, reason))
    else:
        if moved or stats.manifests_copied or stats.blobs_copied or stats.referrers_copied:
            action = "copy"
            report.images.copied += 1
        else:
            action = "skip"
            report.images.skipped += 1
    finally:
        await _reap(resolving)
        report.counts.add(stats)
        if report.planned is not None:
            report.planned.append(
                PlannedCopy(
                    plan.source,
                    tag,
                    plan.destination,
                    str(digest) if digest is not None else None,
                    action,
                    manifests=stats.manifests_copied,
                    blobs=stats.blobs_copied,
                    bytes=stats.bytes_copied,
                    referrers=stats.referrers_copied,
                    reason=reason,
                )
            )
    return digest


async def _copy_tag(
    copier: Copier,
    manifest: Manifest,
    tag: str,
    policy: ConflictPolicy,
    current: Awaitable[Descriptor | None],
) -> bool:
    """Put the image at the destination tag (``current``: what it is now); True when the tag
    was written."""
    if not tag_outdated(await current, copier.dst, manifest, tag, policy):
        copier.stats.manifests_skipped += 1
        return False
    await copier.copy(manifest, tag)
    return True


async def _reap(resolving: asyncio.Future[Descriptor | None] | None) -> None:
    """Ends the destination's look-up, if one was asked: cancelled when the image did not need
    its answer (the source failed), its failure retrieved (the image's error is told already)."""
    if resolving is None:
        return
    resolving.cancel()  # nothing when it is done
    await asyncio.gather(resolving, return_exceptions=True)
