"""Options and arguments shared by ``replicate once`` and ``replicate rule add``."""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import click

from catalog.errors import InvalidArgument
from replication.engine import DEFAULT_PARALLEL
from replication.rules import (
    ConflictPolicy,
    TagFilter,
)


def split_location(text: str, what: str) -> tuple[str, str]:
    """``REGISTRY[/PATH]`` → (registry, path); the path may be empty. ``oci:DIR`` (image
    layouts, see replication.stores) is one location with no path: all of it is the directory."""
    if text.startswith("oci:"):
        return text, ""
    host, _, path = text.strip().partition("/")
    if not host or "://" in text or " " in text:
        raise InvalidArgument(f"{what} {text!r}: give REGISTRY[/PATH], e.g. registry.example:5000")
    return host, path.strip("/")


# -- options shared by `once` and `rule add` ----------------------------------------------------

_GLOBS = (
    "`acme/**` (any depth), `acme/*` (one level), `shop/api` (one repository, no catalog "
    "listing needed). Default: every repository."
)


def endpoints(registry: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--from REGISTRY[/REPO-GLOB]`` and ``--to REGISTRY[/PREFIX]``; REGISTRY is ``registry``."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = click.option(
            "--to",
            "destination",
            required=True,
            metavar="REGISTRY[/PREFIX]",
            help=f"Destination registry ({registry}); PREFIX goes before each source "
            "repository name.",
        )(func)
        return click.option(
            "--from",
            "source",
            required=True,
            metavar="REGISTRY[/REPO-GLOB]",
            help=f"Source registry ({registry}) and the repositories to copy: {_GLOBS}",
        )(func)

    return decorate


rename_option = click.option(
    "--rename",
    metavar="REGEX=REPLACEMENT",
    help="Name destination repositories by pattern instead of a PREFIX in --to: REGEX must "
    "match the whole source repository name, REPLACEMENT is the destination name with its "
    r"groups (\1, \g<name>), split at the last '='; 'acme/(.*)=mirror/\1' copies acme/x/api "
    "to mirror/x/api. Selected repositories REGEX does not match are reported failed, not "
    "copied.",
)


def parse_rename(text: str | None, prefix: str, strip: str = "") -> tuple[str, str] | None:
    """``--rename REGEX=REPLACEMENT`` → (pattern, replacement); None without it. Repository
    names have no '=', so the replacement is what follows the last one."""
    if text is None:
        return None
    pattern, equals, replacement = text.rpartition("=")
    if not equals or not pattern or not replacement:
        raise InvalidArgument(
            f"--rename {text!r}: give REGEX=REPLACEMENT, e.g. 'acme/(.*)=mirror/\\1'"
        )
    if prefix or strip:
        what = "a PREFIX in --to" if prefix else "--strip"
        raise InvalidArgument(
            f"--rename names the whole destination repository: give it or {what}, not both"
        )
    return pattern, replacement


class Selection(NamedTuple):
    """What to copy beyond the repositories, as the shared options give it."""

    exclude: tuple[str, ...]
    tag_globs: tuple[str, ...]
    tag_regex: str | None
    semver: str | None
    newest: int | None
    newest_by: str
    referrers: str
    conflict: str

    def tag_filter(self) -> TagFilter:
        return TagFilter(
            globs=self.tag_globs,
            regex=self.tag_regex,
            semver=self.semver,
            newest=self.newest,
            newest_by="created" if self.newest_by == "created" else "tag",
        )

    def spec_fields(self) -> dict[str, Any]:
        """The fields of a :class:`replication.spec.RuleSpec` they set."""
        tags: dict[str, Any] = {"globs": list(self.tag_globs), "newest_by": self.newest_by}
        for key, value in (("regex", self.tag_regex), ("semver", self.semver)):
            if value is not None:
                tags[key] = value
        if self.newest is not None:
            tags["newest"] = self.newest
        return {
            "exclude": list(self.exclude),
            "tags": tags,
            "referrers": self.referrers,
            "conflict": self.conflict,
        }


_SELECTION = (
    click.option(
        "--exclude", multiple=True, metavar="REPO-GLOB", help="Repositories to leave out."
    ),
    click.option(
        "--tags", "tag_globs", multiple=True, metavar="GLOB", help="Tags to copy (any of)."
    ),
    click.option("--tag-regex", metavar="REGEX", help="Tags to copy: the whole tag must match."),
    click.option(
        "--semver",
        metavar="RANGE",
        help="SemVer tags in an npm RANGE: `^1.2`, `~1.2.3`, `>=1.0.0 <2.0.0`, `1.x || 2.x`.",
    ),
    click.option(
        "--newest", type=click.IntRange(min=1), metavar="N", help="Then keep the newest N."
    ),
    click.option(
        "--newest-by",
        type=click.Choice(["tag", "created"]),
        default="tag",
        show_default=True,
        help="Newest by version order of the tags, or by the images' creation time.",
    ),
    click.option(
        "--referrers",
        default="all",
        show_default=True,
        metavar="all|none|KINDS",
        help="Attachments to copy: a comma list of signatures, attestations, sboms, other.",
    ),
    click.option(
        "--conflict",
        type=click.Choice([p.value for p in ConflictPolicy]),
        default=ConflictPolicy.OVERWRITE.value,
        show_default=True,
        help="When a destination tag points elsewhere: overwrite it, or leave it and report.",
    ),
)


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The tag, referrer and conflict options, handed to ``func`` as one ``selection``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        chosen = {name: kwargs.pop(name) for name in Selection._fields}
        return func(*args, selection=Selection(**chosen), **kwargs)

    decorated: Callable[..., Any] = wrapper
    for option in reversed(_SELECTION):
        decorated = option(decorated)
    return decorated


parallel_option = click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=DEFAULT_PARALLEL,
    show_default=True,
    help="Images copied at once (each copies its blobs in parallel too).",
)
