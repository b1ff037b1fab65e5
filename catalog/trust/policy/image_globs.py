"""Image globs: which references a policy applies to, and the strings a reference offers to them.

``*`` matches within one path segment (never ``/``), ``**`` matches anything including ``/``,
``?`` one character other than ``/``; everything else is literal. A glob must match the whole
string. A reference offers its repository name (``registry/repository``), the name with its tag,
and the name with the digest being judged, all normalised the way ``catalog.oci.reference``
normalises them (``ubuntu`` → ``docker.io/library/ubuntu``), so ``registry.acme.io/shop/*``
covers every tag and digest of every repository directly under ``shop``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from catalog.oci.errors import InvalidReference
from catalog.oci.globs import matcher
from catalog.oci.reference import DOCKER_HUB, parse_image_reference
from catalog.regex import LinearRegex

# What can appear in a reference (host, port, path, tag, digest) plus the wildcards.
_ALLOWED = re.compile(r"[A-Za-z0-9._\-/:@*?]")
_HUB_ALIASES = ("index.docker.io/", "registry-1.docker.io/")


def check_glob(glob: str) -> str:
    """Validate and normalise one glob; raises ValueError with the reason."""
    if not glob:
        raise ValueError("empty image glob")
    if "://" in glob:
        raise ValueError(f"bad glob {glob!r}: give HOST/REPOSITORY patterns, not URLs")
    for char in glob:
        if not _ALLOWED.fullmatch(char):
            raise ValueError(f"bad glob {glob!r}: {char!r} cannot appear in an image reference")
    if "***" in glob:
        raise ValueError(
            f"bad glob {glob!r}: use * (within one path segment) or ** (across segments)"
        )
    if "//" in glob or glob.startswith("/"):
        raise ValueError(f"bad glob {glob!r}: empty path segment")
    return _normalise_hub(glob)


def _normalise_hub(glob: str) -> str:
    # References are normalised to docker.io/library/…; a glob written the short way
    # (``ubuntu``, ``bitnami/*``) or with a Hub alias must follow, or it would never match.
    for alias in _HUB_ALIASES:
        if glob.startswith(alias):
            glob = DOCKER_HUB + "/" + glob[len(alias) :]
    first, slash, rest = glob.partition("/")
    if not slash:
        if not glob.strip("*"):
            return glob  # ``*`` / ``**``: everything, not a Hub name
        return f"{DOCKER_HUB}/library/{glob}"  # ``ubuntu``, ``ubuntu:2*``: an official image
    if "*" in first or "?" in first:
        return glob  # ``*.acme.io/**``, ``**/api``: the host part is a pattern itself
    if "." in first or ":" in first or first == "localhost" or first.lower() != first:
        if first == DOCKER_HUB and "/" not in rest:
            return f"{DOCKER_HUB}/library/{rest}"  # ``docker.io/ubuntu``
        return glob
    return f"{DOCKER_HUB}/{glob}"  # ``bitnami/redis``: a Hub user's repository


def glob_regex(globs: list[str] | tuple[str, ...]) -> LinearRegex:
    """One compiled pattern that fully matches what any of ``globs`` (normalised) matches."""
    return matcher(globs)


def literal_directory(glob: str) -> str:
    """The glob's literal text up to the last ``/`` before its first wildcard (may be "").

    A string the glob matches must start with it, so a set can index its policies by it and
    try only those whose directory is one of the string's (see :func:`directories`).
    """
    wildcard = min((i for i in (glob.find("*"), glob.find("?")) if i >= 0), default=len(glob))
    return glob[: glob.rfind("/", 0, wildcard) + 1]


@lru_cache(maxsize=4096)
def directories(candidates: tuple[str, ...]) -> tuple[str, ...]:
    """Every prefix of the candidates that ends in ``/``, and the empty prefix."""
    found = {""}
    for candidate in candidates:
        slash = candidate.find("/")
        while slash >= 0:
            found.add(candidate[: slash + 1])
            slash = candidate.find("/", slash + 1)
    return tuple(found)


@lru_cache(maxsize=4096)
def reference_candidates(reference: str | None, digest: str) -> tuple[str, ...]:
    """The strings an image offers to globs (cached: gates see the same references again)."""
    if reference is None:
        return ("",)  # only globs that match anything (``**``) apply to an unnamed image
    try:
        parsed = parse_image_reference(reference, None)
    except InvalidReference:
        return (reference,)  # e.g. an ``oci:`` layout path: offered as written
    name = parsed.name
    candidates = [name]
    if parsed.tag:
        candidates.append(f"{name}:{parsed.tag}")
    for pinned in (str(parsed.digest) if parsed.digest else None, digest):
        if pinned and f"{name}@{pinned}" not in candidates:
            candidates.append(f"{name}@{pinned}")
    return tuple(candidates)
