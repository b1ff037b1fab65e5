"""``xregistry tags REPO``: a repository's tags, live from the registry (``crane ls``) or as the
catalog recorded them (``--catalog``, with digests and times; gone tags with ``--all``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from catalog.cli.errors import reports_errors
from catalog.cli.options import build_registry_options, registry_options
from catalog.cli.output import echo_json, output_option, table, when_text
from catalog.errors import InvalidArgument
from catalog.oci.reference import ImageReference, Reference, parse_reference

if TYPE_CHECKING:
    from catalog.cli.context import Reader
    from catalog.oci.options import RegistryOptions
    from catalog.store.views import TagView

# A repository listing is read page by page, from the registry or the catalog; past this many
# tags the command stops with an error rather than hold an unbounded list.
TAGS_MAX = 100_000


def _too_many() -> InvalidArgument:
    return InvalidArgument(f"the repository has more than {TAGS_MAX} tags")


def _repository(text: str) -> Reference:
    ref = parse_reference(text, default_tag=None)
    if ref.tag is not None or ref.digest is not None:
        raise InvalidArgument(f"{text!r}: give a repository (HOST/REPO or oci:PATH), not a tag")
    return ref


async def _live(ref: Reference, options: RegistryOptions) -> list[str]:
    from catalog.oci.describe import open_reference
    from catalog.oci.repository import all_tags

    async with open_reference(ref, options) as (repo, _):
        found = await all_tags(repo, TAGS_MAX)
    if found is None:
        raise _too_many()
    return sorted(found)


def _recorded(catalog: Reader, ref: ImageReference, gone: bool) -> list[TagView]:
    from catalog.cli.hosts import catalog_registry
    from catalog.cli.pages import items

    view = catalog_registry(catalog, ref.registry)
    found = list(
        items(
            lambda size, after: catalog.list_tags(view.name, ref.repository, gone, size, after),
            limit=TAGS_MAX + 1,  # one more tells "more than TAGS_MAX" from "exactly"
        )
    )
    if len(found) > TAGS_MAX:
        raise _too_many()
    return found


def _tag_json(v: TagView) -> dict[str, Any]:
    # What the server's Tag message says too: the same JSON whichever answered.
    return {
        "tag": v.name,
        "digest": v.digest,
        "updateTime": v.updated_at,
        "gone": v.gone_at is not None,
    }


@click.command("tags")
@click.argument("repository")
@click.option(
    "--catalog",
    "from_catalog",
    is_flag=True,
    help="The tags the catalog recorded at its last index (the server's with --server), with "
    "their digests, instead of asking the registry.",
)
@click.option(
    "--all", "gone", is_flag=True, help="With --catalog: tags gone from the registry too."
)
@output_option
@registry_options
@reports_errors
def tags_command(
    repository: str,
    from_catalog: bool,
    gone: bool,
    output: str,
    insecure: bool,
    ca_file: Path | None,
    username: str | None,
    token_realms: tuple[str, ...],
) -> None:
    """List the tags of REPOSITORY (HOST/REPO, or an image layout oci:PATH).

    Live, the registry's tag list (all pages), one per line, sorted; --catalog answers from the
    catalog instead, on the database or through --server (the `read` permission).

    \b
    Examples:
      xregistry tags localhost:5000/shop/api
      xregistry tags localhost:5000/shop/api --catalog --all -o json
    """
    ref = _repository(repository)
    if gone and not from_catalog:
        raise InvalidArgument("--all needs --catalog: a registry lists only the tags it has")
    if not from_catalog:
        options = build_registry_options(insecure, ca_file, username, token_realms)
        names = asyncio.run(_live(ref, options))
        if output == "json":
            echo_json(names)
        elif names:
            click.echo("\n".join(names))
        return
    if not isinstance(ref, ImageReference):
        raise InvalidArgument("--catalog looks a registry's repository up: give HOST/REPO")
    from catalog.cli.context import open_reader

    views = _recorded(open_reader(click.get_current_context()), ref, gone)
    if output == "json":
        echo_json([_tag_json(v) for v in views])
        return
    table(
        None,
        ["tag", "digest", "updated", "gone"],
        [(v.name, v.digest, when_text(v.updated_at), "gone" if v.gone_at else "") for v in views],
    )
