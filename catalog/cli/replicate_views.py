"""How replication prints: progress bars, summaries, rules, runs and lag."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from catalog.cli.output import count_text, record, table, when_text
from replication.report import RunReport, planned_order
from replication.statuses import FAILED_TASK, TaskStatus

if TYPE_CHECKING:
    from replication.service import Lag, RefusedRule, RuleView, RunView


def progress_detail(copied: int, failed: int) -> str:
    """The progress bar's detail for a replication."""
    return f"{size_text(copied)} copied, {failed} failed"


_Counts = tuple[int, int, int]  # copied, skipped, failed


def _counts_table(
    *,
    images: _Counts,
    counters: Mapping[str, int],
    denied: int,
    failures: Sequence[tuple[str, str, str]],
) -> None:
    """The summary of a replication: images, and what their copies counted (``CopyStats``
    names), copied, skipped, failed; then the failed images as (repository, tag, reason)."""

    def counts(what: str) -> _Counts:
        get = counters.get
        return (get(f"{what}_copied", 0), get(f"{what}_skipped", 0), get(f"{what}_failed", 0))

    blobs = counts("blobs")
    mounted = counters.get("blobs_mounted", 0)
    blob_row: tuple[str, int, int | str, int] = ("blobs", *blobs)
    if mounted:
        blob_row = ("blobs", blobs[0], f"{blobs[1]} ({mounted} mounted)", blobs[2])
    table(
        None,
        ["", "copied", "skipped", "failed"],
        [
            ("images", *images),
            ("manifests", *counts("manifests")),
            blob_row,
            ("bytes", *(size_text(n) for n in counts("bytes"))),
            ("referrers", *counts("referrers")),
        ],
    )
    if denied:
        click.echo(f"{count_text(denied, 'image')} denied by the rule's policy, not copied")
    if failures:
        table("failed images", ["repository", "tag", "reason"], failures)


def summary(report: RunReport) -> None:
    click.echo(f"replicated {report.source} → {report.destination} in {report.seconds:.1f} s")
    images = report.images
    _counts_table(
        images=(images.copied, images.skipped, images.failed),
        counters=report.counts.as_dict(),
        denied=report.images_denied,
        failures=[
            (
                e.repository,
                e.tag or "*",
                e.reason if e.outcome == "failed" else f"{e.outcome}: {e.reason}",
            )
            for e in report.errors
        ],
    )


def dry_run_summary(report: RunReport) -> None:
    """What a dry run found: each image with what its copy would send, then the totals."""
    planned = sorted(report.planned or [], key=planned_order)
    table(
        f"dry run: {report.source} → {report.destination} (nothing written)",
        ["repository", "tag", "destination", "digest", "action", "manifests", "blobs", "bytes",
         "referrers", "reason"],
        [
            (p.repository, p.tag, p.destination, p.digest or "", p.action, p.manifests, p.blobs,
             size_text(p.bytes), p.referrers, p.reason)
            for p in planned
        ],
    )  # fmt: skip
    images = report.images
    click.echo(
        f"would copy {count_text(images.copied, 'image')} "
        f"({size_text(report.counts.bytes_copied)} in "
        f"{count_text(report.counts.blobs_copied, 'blob')}, "
        f"{count_text(report.counts.referrers_copied, 'referrer')}); "
        f"{images.skipped} up to date, {images.failed} failing"
    )


def size_text(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    value = count / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


# -- how rules and runs print ------------------------------------------------------------------


def rule_json(view: RuleView) -> dict[str, Any]:
    """The rule's spec with what the catalog keeps of it, for :func:`echo_json`."""
    return {
        **view.spec.model_dump(mode="json"),
        "origin": view.origin,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "last_run": view.last_run,
        "lag": record(view.lag, in_sync=view.lag.in_sync),
    }


def refused_row(view: RefusedRule, width: int) -> tuple[str, ...]:
    """A table's row for a rule this version cannot read: its name, ``refused``, blanks."""
    return (view.name, "refused", *("",) * (width - 2))


def listed_json(view: RuleView | RefusedRule) -> dict[str, Any]:
    """:func:`rule_json`, or a refused rule's name, origin, times and why."""
    from replication.service import RefusedRule

    if not isinstance(view, RefusedRule):
        return rule_json(view)
    return {
        "name": view.name,
        "origin": view.origin,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "refused": view.reason,
    }


def refusals(listed: Sequence[RuleView | RefusedRule]) -> None:
    """After a listing has been printed: FailedPrecondition (one line) naming each stored rule
    this version cannot read, so that a script sees it as the scheduler does (not run)."""
    from catalog.errors import FailedPrecondition
    from replication.service import RefusedRule

    reasons = [view.reason for view in listed if isinstance(view, RefusedRule)]
    if reasons:
        raise FailedPrecondition("; ".join(reasons) + " (listed as refused; replace or remove it)")


def source_text(view: RuleView) -> str:
    spec = view.spec
    text = spec.source
    if spec.include != ["**"]:
        text += "/" + ",".join(spec.include)
    if spec.exclude:
        text += f" (not {','.join(spec.exclude)})"
    return text


def destination_text(view: RuleView) -> str:
    spec = view.spec
    if spec.rename is not None:
        return f"{spec.destination} (rename {spec.rename.pattern} → {spec.rename.replacement})"
    text = f"{spec.destination}/{spec.prefix}" if spec.prefix else spec.destination
    return f"{text} (strip {spec.strip})" if spec.strip else text


def schedule_text(view: RuleView) -> str:
    spec = view.spec
    if spec.schedule is None:
        when = "on request"
    elif spec.schedule.interval:
        when = f"every {spec.schedule.interval}"
    else:
        when = f"cron {spec.schedule.cron}"
    return f"{when}, on index" if spec.on_index else when


def _duration(seconds: float) -> str:
    """``3m12s``, ``2h5m``, ``1d3h``: two units at most."""
    total = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts[:2])


def lag_text(lag: Lag, *, since: bool = False) -> str:
    if lag.in_sync:
        return "in sync"
    text = f"behind {_duration(lag.seconds)}"
    if since:
        text += f" since {when_text(lag.pending_since)}"
    return text if lag.synced_at is not None else f"{text} (never synced)"


def last_run_text(run: RunView | None) -> str:
    if run is None:
        return "never"
    return f"#{run.id} {run.status} ({run.trigger})"


def failed_count(run: RunView) -> int:
    return sum(run.outcomes.get(s, 0) for s in FAILED_TASK)


def run_detail(run: RunView) -> None:
    took = ""
    if run.started_at is not None and run.finished_at is not None:
        took = f" in {(run.finished_at - run.started_at).total_seconds():.1f} s"
    click.echo(f"run {run.id} of rule {run.rule} ({run.trigger}): {run.status}{took}")
    times = [
        ("created", run.created_at),
        ("started", run.started_at),
        ("finished", run.finished_at),
    ]
    if run.scheduled_for is not None:
        times.insert(0, ("scheduled for", run.scheduled_for))
    click.echo("  " + ", ".join(f"{what} {when_text(at)}" for what, at in times if at is not None))
    if run.error:
        click.echo(f"  error: {run.error}")
    click.echo(
        f"  images: {run.tasks_done} of {run.tasks_total} done"
        + "".join(f", {n} {status}" for status, n in run.outcomes.items())
    )
    outcomes = run.outcomes
    _counts_table(
        images=(
            outcomes.get(TaskStatus.COPIED, 0),
            outcomes.get(TaskStatus.SKIPPED, 0),
            failed_count(run),
        ),
        counters=run.counters,
        denied=outcomes.get(TaskStatus.DENIED, 0),
        failures=[
            (
                f.repository,
                f.tag or "*",
                f.reason if f.status == TaskStatus.FAILED else f"{f.status}: {f.reason}",
            )
            for f in run.failures
        ],
    )
    shown = len(run.failures)
    if shown < failed_count(run) + outcomes.get(TaskStatus.DENIED, 0):
        click.echo(f"  (the first {shown} failed images are shown)")
