"""``xregistry index NAME``: crawl a registry into the catalog, with a progress bar."""

from __future__ import annotations

import asyncio

import click

from catalog.cli.context import Catalog, with_catalog
from catalog.cli.errors import reports_errors
from catalog.cli.output import camel, count_text, echo_json, output_option, progress_bar, table
from catalog.index.progress import IndexStats


@click.command("index")
@click.argument("name")
@output_option
@reports_errors
@with_catalog
def index_command(catalog: Catalog, name: str, output: str) -> None:
    """Index registry NAME now: repositories, tags, manifests, referrers and their documents.

    Incremental: tags the catalog knows are checked with HEAD, so an unchanged registry costs
    no manifest downloads. Documents that cannot be read are recorded as index errors and
    shown at the end; they never stop the crawl.

    \b
    Examples:
      xregistry index local
      xregistry index local -o json      # the run's counters, no progress bar
    """
    if output == "json":
        stats = asyncio.run(catalog.index(name))
        echo_json(stats)
        return
    with progress_bar(f"indexing {name}") as show:

        def progress(stats: IndexStats) -> None:
            show(
                stats.repositories_total or None,
                stats.repositories_done,
                f"{count_text(stats.manifests_new, 'new manifest')}, "
                f"{count_text(stats.attachments_new, 'attachment')}, "
                f"{count_text(stats.errors, 'error')}",
            )

        stats = asyncio.run(catalog.index(name, progress))
    # The counters by their JSON names, so that people and scripts speak of the same things.
    table(
        None,
        ["counter", "value"],
        [(camel(k), v) for k, v in stats.as_dict().items() if k != "phase"],
    )
    if stats.errors:
        errors = catalog.list_index_errors(name, size=20).items
        table(
            "index errors (latest 20; xregistry keeps them all)",
            ["repository", "reference", "reason"],
            [(e.repository, e.reference, e.reason) for e in errors[-20:]],
        )
