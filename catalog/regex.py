"""User-supplied regular expressions, matched in linear time (RE2).

Python's ``re`` backtracks: ``(a+)+@acme\\.com`` takes seconds on a 24-character identity and
doubles with every character, and one such pattern in a policy or a replication rule stalls
the whole server. RE2 (``google-re2``) guarantees time linear in the input, at the price of the
features that need backtracking: backreferences (``\\1`` inside a pattern) and look-around
(``(?=…)``, ``(?!…)``, ``(?<=…)``, ``(?<!…)``) are refused when the pattern is loaded, with a
message naming the field. Everything else people write (classes, ``\\d``, ``\\w``, ``(?i)``,
``(?P<name>…)``, ``{m,n}`` up to 1000) is accepted; ``\\Z`` is spelled ``\\z`` (or ``$``).
See https://github.com/google/re2/wiki/Syntax.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

# Long enough for any identity or name pattern written by hand; short enough that a pattern
# cannot be a way to make the loader or RE2's compiler do unbounded work.
MAX_PATTERN_LENGTH: Final = 1024
# RE2 refuses a program larger than this (bytes of compiled automaton), e.g. ``(a{1000}){1000}``.
_MAX_MEMORY: Final = 8 << 20
# Where a refusal's text usually comes from, said once so every field's message explains it.
_SYNTAX = "RE2 syntax: no backreferences or look-around"
# RE2 and its options, loaded with the first pattern: a command whose rules need none (a
# replication of ``**``) starts without them.
_RE2: list[Any] = []


def _re2() -> tuple[Any, Any]:
    """The ``re2`` module and the options every pattern is compiled with."""
    if not _RE2:
        import re2

        options = re2.Options()
        options.max_mem = _MAX_MEMORY
        options.log_errors = False  # RE2 would print every refused pattern on stderr
        _RE2.extend((re2, options))
    return _RE2[0], _RE2[1]


# Named tuples, not frozen dataclasses: a dataclass's generated methods are compiled in every
# process that imports it (~4M instructions each at a command's start).
class Match(NamedTuple):
    """The groups of one full match."""

    found: Any

    def group(self, key: int | str) -> str:
        value = self.found.group(key)
        return "" if value is None else str(value)


class LinearRegex(NamedTuple):
    """A compiled pattern; every search is linear in the length of the text."""

    pattern: str
    compiled: Any

    def fullmatch(self, text: str) -> Match | None:
        found = self.compiled.fullmatch(text)
        return None if found is None else Match(found)

    def fullmatches(self, text: str) -> bool:
        return self.compiled.fullmatch(text) is not None

    @property
    def groups(self) -> int:
        return int(self.compiled.groups)

    @property
    def group_names(self) -> frozenset[str]:
        return frozenset(self.compiled.groupindex)


def compile_linear(pattern: str, max_length: int | None = MAX_PATTERN_LENGTH) -> LinearRegex:
    """Compile ``pattern`` with RE2; a pattern RE2 refuses or one over ``max_length``
    characters raises ValueError saying why (the caller names the field and quotes the
    pattern). Patterns built from globs pass ``None``: RE2's memory limit bounds them."""
    if max_length is not None and len(pattern) > max_length:
        raise ValueError(
            f"the regular expression is {len(pattern)} characters long (at most {max_length})"
        )
    re2, options = _re2()
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise ValueError(f"{reason} ({_SYNTAX})") from None
    return LinearRegex(pattern, compiled)


class Template(NamedTuple):
    """A replacement naming groups of a match: ``\\1``…``\\99``, ``\\g<name>`` or ``\\g<1>``,
    and ``\\\\`` for a backslash; everything else is literal. Parsed once, checked against the
    pattern's groups, so expanding it cannot fail."""

    text: str
    # Literal text at even indexes, group keys at odd ones.
    pieces: tuple[str | int, ...]

    def expand(self, match: Match) -> str:
        return "".join(
            match.group(piece) if i % 2 else str(piece) for i, piece in enumerate(self.pieces)
        )


def template(text: str, regex: LinearRegex) -> Template:
    """Parse ``text`` as a replacement for ``regex``'s matches; ValueError saying why."""
    pieces: list[str | int] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            literal.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "\\":
            literal.append("\\")
            i += 2
            continue
        key: str | int
        if following.isdigit() and following.isascii():
            end = i + 2
            if end < len(text) and text[end].isascii() and text[end].isdigit():
                end += 1
            key, i = int(text[i + 1 : end]), end
        elif following == "g" and text[i + 2 : i + 3] == "<" and ">" in text[i + 3 :]:
            close = text.index(">", i + 3)
            name = text[i + 3 : close]
            key = int(name) if name.isascii() and name.isdigit() else name
            i = close + 1
        else:
            raise ValueError(f"bad escape at position {i} (use \\1, \\g<name> or \\\\)")
        _check_group(key, regex)
        pieces.extend(("".join(literal), key))
        literal = []
    pieces.append("".join(literal))
    return Template(text, tuple(pieces))


def _check_group(key: str | int, regex: LinearRegex) -> None:
    if isinstance(key, int):
        if key > regex.groups:
            raise ValueError(
                f"invalid group reference {key} ({regex.pattern!r} has {regex.groups} groups)"
            )
    elif key not in regex.group_names:
        raise ValueError(f"unknown group name {key!r} in {regex.pattern!r}")
