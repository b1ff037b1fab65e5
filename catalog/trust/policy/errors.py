"""How an invalid policy file is refused: every problem, each with its file, line and place."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from catalog.errors import ConfigError, InvalidArgument

# A place in a YAML document: mapping keys and sequence indexes from the root.
YamlPath = tuple[str | int, ...]


def render_path(path: YamlPath) -> str:
    """``("authorities", 0, "keyless")`` → ``authorities[0].keyless``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class Problem(NamedTuple):  # a tuple: made without generated source (start-up time)
    source: str  # the file name (or another label) the policy came from
    line: int  # 1-based
    path: YamlPath
    message: str

    def __str__(self) -> str:
        where = render_path(self.path)
        return f"{self.source}:{self.line}: {where + ': ' if where else ''}{self.message}"


class PolicyError(InvalidArgument, ConfigError):
    """A policy document that cannot be used; ``problems`` lists every reason, in file order.

    Invalid input where a request carries it (INVALID_ARGUMENT), bad configuration where a file
    does; both say the line and the reason.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        # Sorted so the message reads top to bottom like the file, whatever found them first.
        self.problems = tuple(sorted(problems, key=lambda p: (p.line, render_path(p.path))))
        super().__init__("\n".join(str(p) for p in self.problems))
