"""A replication run: plan the images a rule selects, copy them in parallel, report.

Parallelism has two levels: ``parallel`` images at once, and within each image every blob and
child manifest at once; the clients' per-registry request limits bound what reaches each
registry. Source and destination always get a client each, even on one host, so a download
waiting for its upload never holds a request slot the upload needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from catalog.errors import InvalidArgument
from catalog.oci.client import RegistryClient, RegistryOptions
from replication.image import RunState, replicate_image
from replication.planner import RepositoryPlan, planned
from replication.report import ImageError, ProgressCallback, RunReport
from replication.rules import Rewrite, Rule
from replication.stores import LayoutStore, RegistryStore, Store, is_layout

DEFAULT_PARALLEL = 8


async def replicate(
    rule: Rule,
    *,
    source_options: RegistryOptions | None = None,
    destination_options: RegistryOptions | None = None,
    parallel: int = DEFAULT_PARALLEL,
    on_progress: ProgressCallback | None = None,
    dry_run: bool = False,
) -> RunReport:
    """Run ``rule`` once. Per-image failures are in the report; an unreachable source or a
    refused repository listing raises. Either side may be ``oci:PATH`` (image layouts, see
    :mod:`replication.stores`). A ``dry_run`` reads both sides and writes nothing: the report
    lists what would be copied (:mod:`replication.dryrun`)."""
    if rule.source == rule.destination and rule.rewrite == Rewrite():
        raise InvalidArgument("source and destination are the same repositories")
    if parallel < 1:
        raise InvalidArgument("parallel needs at least 1")
    started = time.monotonic()
    report = RunReport(rule.source, rule.destination, planned=[] if dry_run else None)
    async with contextlib.AsyncExitStack() as stack:
        source: Store
        destination: Store
        if is_layout(rule.source):
            source = LayoutStore(rule.source)
        else:
            source = await _registry(stack, rule.source, _sized(source_options, parallel))
        if is_layout(rule.destination):
            # Created as needed; a dry run's need not exist (a real run would create them).
            destination = LayoutStore(rule.destination, create=not dry_run, must_exist=False)
        else:
            options = _sized(destination_options, parallel)
            destination = await _registry(stack, rule.destination, options)
        if dry_run:
            from replication.dryrun import DryRunStore  # only dry runs pay for its import

            destination = DryRunStore(destination)

        def unlisted(repository: str, reason: str) -> None:
            report.errors.append(ImageError(repository, "", reason))

        state = RunState(rule, source, destination, dry_run=dry_run)
        limit = asyncio.Semaphore(parallel)

        async def one(repository: RepositoryPlan, tag: str) -> None:
            async with limit:
                await replicate_image(state, repository, tag, report)
            _notify(on_progress, report)

        # A repository's images start as soon as its tags are listed, not after every
        # repository's: the destination's look-ups then overlap the source's listings.
        images: list[asyncio.Future[None]] = []
        try:
            async with contextlib.aclosing(planned(source, rule, unlisted)) as repositories:
                async for repository in repositories:
                    report.images_total += len(repository.tags)
                    _notify(on_progress, report)
                    images += [asyncio.ensure_future(one(repository, t)) for t in repository.tags]
            _notify(on_progress, report)
            await asyncio.gather(*images)
        finally:  # a listing that raised (or a cancelled run) leaves no image running
            for image in images:
                image.cancel()
            await asyncio.gather(*images, return_exceptions=True)
    report.seconds = time.monotonic() - started
    return report


async def _registry(
    stack: contextlib.AsyncExitStack, host: str, options: RegistryOptions
) -> RegistryStore:
    return RegistryStore(await stack.enter_async_context(RegistryClient(host, options)))


def _sized(options: RegistryOptions | None, parallel: int) -> RegistryOptions:
    """Let the per-registry request limit grow with the images in flight."""
    options = options or RegistryOptions()
    if options.max_concurrency >= 2 * parallel:
        return options
    return options._replace(max_concurrency=2 * parallel)


def _notify(callback: ProgressCallback | None, report: RunReport) -> None:
    if callback is not None:
        callback(report)
