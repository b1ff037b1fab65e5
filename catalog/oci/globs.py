"""Repository and image-reference globs: one meaning for policies, replication rules and the
registries' repository filters.

``*`` and ``?`` stay inside one path component, ``**`` crosses components, and ``**/`` may
match no component at all (``a/**/b`` matches ``a/b``): ``acme/*`` matches ``acme/api`` but
not ``acme/team/api``, which ``acme/**`` matches. There are no ``[...]`` classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalog.regex import LinearRegex

# A class with no character in it: RE2 has no ``(?!)``.
_NOTHING = r"[^\x00-\x{10FFFF}]"
# Repository names (lower-case letters, digits, . _ - /) and the wildcards.
_REPOSITORY_GLOB = re.compile(r"[a-z0-9._/*?-]+")


def translate(glob: str) -> str:
    """The regular expression (without anchors) that matches what ``glob`` matches."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def is_glob(text: str) -> bool:
    """Whether ``text`` has a wildcard; without one it names a single thing outright."""
    return any(c in text for c in "*?")


def check_repository_glob(text: str) -> str:
    """``text`` when it is a repository name or a glob of them; raises ValueError saying why."""
    if _REPOSITORY_GLOB.fullmatch(text) is None:
        raise ValueError(
            f"repository glob {text!r}: repository names are lower-case letters, "
            "digits and . _ - /; globs add * ** and ?"
        )
    return text


def matcher(globs: Iterable[str]) -> LinearRegex:
    """One pattern whose ``fullmatch`` is what any of ``globs`` matches (none: nothing).

    RE2, not ``re``: ``a*a*a*a*a*a*a*a*a*a*a*a*b`` against 40 ``a`` backtracks for minutes."""
    from catalog.regex import compile_linear  # with the first pattern: `**` alone needs none

    alternatives = [f"(?:{translate(g)})" for g in globs]
    return compile_linear("|".join(alternatives) or _NOTHING, max_length=None)
