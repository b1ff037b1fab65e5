"""Repository and image-reference globs: one translation for policies and replication rules.

``*`` and ``?`` stay inside one path component, ``**`` crosses components, and ``**/`` may
match no component at all (``a/**/b`` matches ``a/b``).
"""

from __future__ import annotations

import re


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
