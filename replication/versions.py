"""Tags read as SemVer 2.0 versions, and npm-style ranges over them.

The library ``node-semver`` (PyPI; a port of npm's own ``semver`` package) parses versions and
ranges, so the grammar is exactly npm's (and regsync's): ``^1.2``, ``~1.2.3``, ``~>1.2``,
``>=1.0.0 <2.0.0``, ``1.x``/``1.*``/``1``, ``1.2.3 - 2.3.4``, alternatives joined by ``||``.
Strict mode: ``01.2.3`` (a leading zero) and ``1.2.3.4`` are not versions. A pre-release
(``1.2.3-rc.1``, ``2.0.0-SNAPSHOT``) matches only a comparator that names a pre-release of the
same ``MAJOR.MINOR.PATCH`` (npm's rule), so ``>=1.0.0`` never pulls in ``1.5.0-rc.1``.

A tag is a version when it is one exactly, optionally after a ``v``: ``v1.2.3``, ``1.2.3-rc.1``.
Partial tags such as ``1.2`` or ``3`` are the moving aliases images carry beside their full
versions; they are not versions (as in npm) and no range admits them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from catalog.errors import InvalidArgument

# A SemVer 2.0 version with an optional "v": checked before the library sees the text, which
# would also accept surrounding blanks and "=" prefixes.
_TAG = re.compile(
    r"[vV]?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
)
# Version components above this are not versions anyone tags (and npm refuses past 2^53).
_MAX_COMPONENT = 2**53 - 1


@functools.total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class TagVersion:
    """A SemVer 2.0 version, ordered by SemVer precedence (build metadata ignored)."""

    text: str
    parsed: Any  # nodesemver.SemVer (the library has no type hints)

    def __str__(self) -> str:
        return str(self.parsed.format())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TagVersion):
            return NotImplemented
        return bool(self.parsed.compare(other.parsed) == 0)

    def __lt__(self, other: TagVersion) -> bool:
        return bool(self.parsed.compare(other.parsed) < 0)

    def __hash__(self) -> int:
        return hash(str(self))


def _semver() -> Any:
    """The library, imported on first use: it costs start-up time every ``replicate once`` would
    pay, and only version rules and orders need it."""
    import nodesemver

    return nodesemver


def tag_version(tag: str) -> TagVersion | None:
    """The version a tag names (``v1.2.3``, ``2.0.0-rc.1``); None for ``latest``, ``1.2``."""
    match = _TAG.fullmatch(tag)
    if match is None or any(int(match[i]) > _MAX_COMPONENT for i in (1, 2, 3)):
        return None
    try:
        return TagVersion(tag, _semver().make_semver(tag, loose=False))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class VersionRange:
    """An npm range: ``||`` alternatives, each a set of comparators that must all hold."""

    text: str
    parsed: Any  # nodesemver.Range

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        if not text.strip():
            # npm reads "" as "*"; on a command line it is more likely a mistake.
            raise InvalidArgument("semver range is empty (use '*' for any version)")
        try:
            parsed = _semver().make_range(text, loose=False)
        except (ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else "not a range"
            raise InvalidArgument(f"semver range {text!r}: {reason}") from None
        return cls(text, parsed)

    def __contains__(self, version: TagVersion) -> bool:
        return bool(self.parsed.test(version.parsed))
