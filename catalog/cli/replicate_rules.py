"""``xregistry replicate rule|run|status``: stored rules between the catalog's registries,
their runs, and how far behind each destination is (on the database, or a server with
``--server``). The store and gRPC are imported by the commands that need them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from catalog.cli.errors import EXIT_ERROR, reports_errors
from catalog.cli.hosts import registered_name_hint
from catalog.cli.output import echo_json, output_option, progress_bar, table, when_text
from catalog.cli.replicate_options import (
    Selection,
    endpoints,
    parallel_option,
    parse_rename,
    rename_option,
    selection_options,
    split_location,
)
from catalog.cli.replicate_views import (
    destination_text,
    failed_count,
    lag_text,
    last_run_text,
    listed_json,
    progress_detail,
    refusals,
    refused_row,
    rule_json,
    run_detail,
    schedule_text,
    size_text,
    source_text,
)
from catalog.errors import AlreadyExists, InvalidArgument, NotFound
from replication.statuses import RunStatus

# -- stored rules ------------------------------------------------------------------------------


@click.group("rule")
def rule_group() -> None:
    """Stored replication rules between the catalog's registries.

    A rule names registries as `xregistry registry add` named them, so it uses their hosts, TLS
    settings and credentials. `xregistry serve` runs rules on their schedules (and on index
    events with --on-index); `xregistry replicate run RULE` runs one now.
    """


def _registry_part(text: str, what: str) -> tuple[str, str]:
    name, path = split_location(text, what)
    if ":" in name or "." in name:
        raise InvalidArgument(f"{what} {text!r}: {registered_name_hint(name, path)}")
    return name, path


@rule_group.command("add")
@click.argument("name")
@endpoints("its name in the catalog")
@rename_option
@selection_options
@click.option(
    "--strip",
    default="",
    metavar="PATH",
    help="Remove this leading path from each repository name before PREFIX goes on: with "
    "--strip acme, acme/shop/api becomes PREFIX/shop/api.",
)
@click.option(
    "--policy",
    metavar="NAME",
    help="Copy only images this stored policy set allows (`xregistry policy apply`); the "
    "others are reported as denied.",
)
@click.option("--interval", metavar="DURATION", help="Run every so often: 90s, 15m, 2h, 1d.")
@click.option("--cron", metavar="EXPR", help="Run on a cron schedule (UTC): '*/15 * * * *'.")
@click.option(
    "--on-index",
    is_flag=True,
    help="Run when indexing the source registry sees a matching tag appear or move.",
)
@click.option("--replace", is_flag=True, help="Replace the rule NAME if it exists.")
@output_option
@reports_errors
def rule_add(
    name: str,
    source: str,
    destination: str,
    rename: str | None,
    selection: Selection,
    strip: str,
    policy: str | None,
    interval: str | None,
    cron: str | None,
    on_index: bool,
    replace: bool,
    output: str,
) -> None:
    """Store rule NAME: copy from one registry of the catalog to another.

    Schedules (--interval or --cron) and --on-index are kept by `xregistry serve`; without
    them the rule runs when asked (`xregistry replicate run NAME`). Exit 2 for a malformed
    rule, 3 for an unknown registry, 8 when NAME exists (give --replace).

    \b
    Examples:
      xregistry registry add reg-a registry-a.example:5000
      xregistry registry add reg-b registry-b.example:5000
      xregistry replicate rule add acme --from reg-a/acme/** --to reg-b/mirror --interval 15m
      xregistry replicate rule add releases --from reg-a --to reg-b --semver '>=1.0' \\
          --newest 5 --policy prod --cron '0 * * * *' --on-index
      xregistry replicate rule add teams --from reg-a/acme/** --to reg-b \\
          --rename 'acme/(?P<team>[^/]+)/(.*)=mirror/\\g<team>-\\2'
    """
    from catalog.cli.replication_backend import open_replication
    from replication.spec import parse_spec

    src, pattern = _registry_part(source, "--from")
    dst, prefix = _registry_part(destination, "--to")
    renamed = parse_rename(rename, prefix, strip)
    data: dict[str, Any] = {
        "name": name,
        "source": src,
        "destination": dst,
        "include": [pattern or "**"],
        "prefix": prefix,
        "strip": strip,
        **selection.spec_fields(),
        "rename": {"pattern": renamed[0], "replacement": renamed[1]} if renamed else None,
        "policy": policy,
        "on_index": on_index,
    }
    if interval is not None or cron is not None:
        data["schedule"] = {k: v for k, v in (("interval", interval), ("cron", cron)) if v}
    spec = parse_spec(data)
    try:
        view = open_replication().put_rule(spec, replace=replace)
    except AlreadyExists as exc:
        raise AlreadyExists(f"{exc} (give --replace to replace it)") from None
    if output == "json":
        echo_json(rule_json(view))
    else:
        click.echo(
            f"stored rule {spec.name}: {source_text(view)} → {destination_text(view)}, "
            f"runs {schedule_text(view)}"
        )


@rule_group.command("list")
@output_option
@reports_errors
def rule_list(output: str) -> None:
    """List the rules with their last run and how far each destination is behind."""
    from catalog.cli.replication_backend import open_replication
    from replication.service import RuleView

    listed = open_replication().list_rules()
    if output == "json":
        echo_json([listed_json(v) for v in listed])
    else:
        columns = ["name", "from", "to", "schedule", "last run", "lag"]
        rows = [
            (
                v.spec.name,
                source_text(v),
                destination_text(v),
                schedule_text(v),
                last_run_text(v.last_run),
                lag_text(v.lag),
            )
            if isinstance(v, RuleView)
            else refused_row(v, len(columns))
            for v in listed
        ]
        table(None, columns, rows)
    refusals(listed)  # the others listed: a script still sees the refusal by the exit code


@rule_group.command("remove")
@click.argument("name")
@output_option
@reports_errors
def rule_remove(name: str, output: str) -> None:
    """Remove rule NAME and the record of its runs (copied images stay)."""
    from catalog.cli.replication_backend import open_replication

    open_replication().delete_rule(name)
    if output == "json":
        echo_json({"name": name, "removed": True})
    else:
        click.echo(f"removed rule {name}")


# -- runs --------------------------------------------------------------------------------------


@click.command("run")
@click.argument("rule")
@click.option("--wait", is_flag=True, help="Follow the run to its end and summarise it.")
@parallel_option
@output_option
@reports_errors
def run_command(rule: str, wait: bool, parallel: int, output: str) -> None:
    """Start a run of RULE now.

    On the database (no --server) the run is created pending, and a running `xregistry serve`
    on that database executes it; with --wait this command executes it itself, with a progress
    bar, and prints the summary. With --server the server executes it; --wait follows it.
    With --wait, exits 1 when the run failed (any image not copied, or a conflicting tag).

    \b
    Examples:
      xregistry replicate run acme --wait
      xregistry --server localhost:50051 replicate run acme --wait -o json
    """
    from catalog.cli.replication_backend import open_replication

    backend = open_replication()
    run = backend.start_run(rule)
    if not wait:
        if output == "json":
            echo_json(run)
        elif backend.executes_here:
            click.echo(
                f"run {run.id} of rule {rule} is pending: a running `xregistry serve` on this "
                "database executes it (or run it here with --wait)"
            )
        else:
            click.echo(
                f"run {run.id} of rule {rule} started: xregistry replicate status --run {run.id}"
            )
        return
    if output == "json":
        final = asyncio.run(backend.follow(run.id, lambda _: None, parallel=parallel))
        echo_json(final)
    else:
        with progress_bar(f"{rule}: run {run.id}") as show:
            final = asyncio.run(
                backend.follow(
                    run.id,
                    lambda v: show(
                        v.tasks_total
                        if v.status not in (RunStatus.PENDING, RunStatus.PLANNING)
                        else None,
                        v.tasks_done,
                        progress_detail(v.counters.get("bytes_copied", 0), failed_count(v)),
                    ),
                    parallel=parallel,
                )
            )
        run_detail(final)
    if final.status != RunStatus.SUCCEEDED:
        click.get_current_context().exit(EXIT_ERROR)


@click.command("status")
@click.argument("rule", required=False)
@click.option(
    "--run", "run_id", type=click.IntRange(min=1), metavar="ID", help="One run in detail."
)
@click.option(
    "--runs",
    "run_count",
    type=click.IntRange(0, 1000),
    metavar="N",
    help="How many recent runs to list: of RULE (10 when not given), or, without RULE, of "
    "all rules (none when not given).",
)
@output_option
@reports_errors
def status_command(
    rule: str | None, run_id: int | None, run_count: int | None, output: str
) -> None:
    """How replication is doing: every rule (or RULE) with its last run and lag, or one run.

    Lag is judged from what the catalog knows: a destination is in sync as of the start of the
    newest run that copied everything; tag changes the indexer saw on the source since (or a
    later failed run) put it behind. With -o json: the rules as a list; RULE as an object with
    its "runs"; --runs without RULE, an object with "rules" and "runs".

    \b
    Examples:
      xregistry replicate status
      xregistry replicate status acme            # the rule and its recent runs
      xregistry replicate status --runs 20       # and the newest 20 runs of all rules
      xregistry replicate status --run 42 -o json
    """
    from catalog.cli.replication_backend import open_replication

    backend = open_replication()
    if run_id is not None:
        run = backend.get_run(run_id)
        if rule is not None and run.rule != rule:
            raise NotFound(f"run {run_id} is a run of rule {run.rule!r}, not of {rule!r}")
        if output == "json":
            echo_json(run)
        else:
            run_detail(run)
        return
    from replication.service import RuleView

    listed = [backend.get_rule(rule)] if rule is not None else backend.list_rules()
    count = run_count if run_count is not None else (10 if rule is not None else 0)
    runs = backend.list_runs(rule, size=count).items if count else []
    if output == "json":
        if rule is not None:
            echo_json({**listed_json(listed[0]), "runs": runs})
        elif run_count is not None:
            echo_json({"rules": [listed_json(v) for v in listed], "runs": runs})
        else:
            echo_json([listed_json(v) for v in listed])
        refusals(listed)
        return
    columns = ["rule", "last run", "finished", "lag", "pending changes"]
    table(
        None,
        columns,
        [
            (
                v.spec.name,
                last_run_text(v.last_run),
                when_text(v.last_run.finished_at) if v.last_run else "",
                lag_text(v.lag, since=True),
                v.lag.pending_changes,
            )
            if isinstance(v, RuleView)
            else refused_row(v, len(columns))
            for v in listed
        ],
    )
    if runs:
        columns = ["run", "trigger", "status", "started", "finished", "images", "copied", "failed"]
        rows = [
            (
                r.id,
                r.trigger,
                r.status,
                when_text(r.started_at),
                when_text(r.finished_at),
                f"{r.tasks_done}/{r.tasks_total}",
                size_text(r.counters.get("bytes_copied", 0)),
                failed_count(r),
            )
            for r in runs
        ]
        if rule is not None:
            table(f"recent runs of {rule}", columns, rows)
        else:
            table(
                "recent runs",
                [columns[0], "rule", *columns[1:]],
                [(row[0], r.rule, *row[1:]) for row, r in zip(rows, runs, strict=True)],
            )
    refusals(listed)
