"""Tags read as versions, and semver ranges over them (the npm/cargo grammar people write).

``packaging`` does the version arithmetic; this module only translates the range grammar:
``^1.2``, ``~1.2.3``, ``1.x``, ``>=1.2 <2``, ``1.2.3``, alternatives joined by ``||``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from catalog.errors import InvalidArgument

_COMPARATOR = re.compile(
    r"^(?P<op>\^|~|>=|<=|>|<|==|=|!=)?\s*"
    r"(?P<parts>\d+(?:\.(?:\d+|[xX*])){0,2}|[xX*])(?P<pre>[-+][0-9A-Za-z.+-]+)?$"
)


def tag_version(tag: str) -> Version | None:
    """The version a tag names (``v1.2.3``, ``1.2``, ``2.0.0-rc.1``); None for ``latest``."""
    text = tag[1:] if tag[:1] in ("v", "V") and tag[1:2].isdigit() else tag
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A semver range: any of ``alternatives`` (each a conjunction of comparators) matches."""

    text: str
    alternatives: tuple[SpecifierSet, ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        alternatives = []
        for alternative in text.split("||"):
            comparators = [c for c in re.split(r"[\s,]+", _glue_operators(alternative)) if c]
            if not comparators:
                raise InvalidArgument(f"semver range {text!r}: empty alternative")
            specifiers = [spec for c in comparators for spec in _translate(c, text)]
            try:
                alternatives.append(SpecifierSet(",".join(specifiers)))
            except InvalidSpecifier as exc:
                raise InvalidArgument(f"semver range {text!r}: {exc}") from None
        return cls(text, tuple(alternatives))

    def __contains__(self, version: Version) -> bool:
        # As in npm, a pre-release matches only a range that names pre-releases itself.
        return any(
            spec.contains(version, prereleases=bool(spec.prereleases)) for spec in self.alternatives
        )


def _glue_operators(text: str) -> str:
    """``>= 1.2`` → ``>=1.2``, so that splitting on spaces keeps each comparator whole."""
    return re.sub(r"(\^|~|>=|<=|>|<|==|=|!=)\s+", r"\1", text.strip())


def _translate(comparator: str, whole: str) -> list[str]:
    """One comparator as PEP 440 specifiers."""
    match = _COMPARATOR.match(comparator)
    if match is None:
        raise InvalidArgument(f"semver range {whole!r}: cannot read {comparator!r}")
    op, pre = match["op"] or "", match["pre"] or ""
    given = [p for p in match["parts"].split(".") if p not in ("x", "X", "*")]
    numbers = [int(p) for p in given]
    if len(given) < len(match["parts"].split(".")) and op in (">", "<", ">=", "<=", "!="):
        raise InvalidArgument(f"semver range {whole!r}: wildcards need no operator")
    if not numbers:
        return []  # "*": any version
    low = ".".join(str(n) for n in [*numbers, 0, 0][:3]) + pre
    if op == "^":
        # The first non-zero component is the one that must not change.
        first = next((i for i, n in enumerate(numbers) if n), len(numbers) - 1)
        return [f">={low}", f"<{_bump(numbers, min(first, len(numbers) - 1))}"]
    if op == "~":
        return [f">={low}", f"<{_bump(numbers, min(1, len(numbers) - 1))}"]
    partial = len(numbers) < 3
    if op in ("", "=", "=="):
        if partial:
            return [f">={low}", f"<{_bump(numbers, len(numbers) - 1)}"]
        return [f"=={low}"]
    if op == ">" and partial:
        return [f">={_bump(numbers, len(numbers) - 1)}"]
    if op == "<=" and partial:
        return [f"<{_bump(numbers, len(numbers) - 1)}"]
    return [f"{op}{low}"]


def _bump(numbers: list[int], position: int) -> str:
    """The smallest version above every version that starts with ``numbers[:position + 1]``."""
    bumped = [*numbers[:position], numbers[position] + 1]
    return ".".join(str(n) for n in [*bumped, 0, 0][:3])
