"""JSON documents decoded under bounds, so that no input can exhaust the stack or the memory.

``json.loads`` recurses in C once per nesting level (a ``RecursionError`` near 1,000 levels,
wherever the caller's stack stood), and ``[[],[],…]`` costs about twenty bytes of objects per
input byte. :func:`loads` counts the values first (every comma and bracket: an upper bound, at
C speed, before anything is built; unless the document is too short to exceed the bound),
decodes strict UTF-8 without NaN or Infinity, then checks the nesting without recursion, on the
document's brackets outside strings (a scan at C speed).
Every failure is one :class:`JSONRefused` line.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, NoReturn


class JSONRefused(ValueError):
    """The document is not JSON, or is over a bound; the message says which, in one line."""


def loads(data: bytes | str, *, max_depth: int, max_values: int) -> Any:
    """Parse a whole document: at most ``max_values`` values, nested ``max_depth`` deep."""
    # Each value counted is a comma, a bracket or the top value: a document of fewer characters
    # than the bound cannot exceed it, and is not counted (SBOMs parsed whole: bounded by size).
    if len(data) >= max_values:
        values = _values(data)
        if values > max_values:
            raise JSONRefused(
                f"more than {max_values} JSON values (counting every comma and bracket: {values})"
            )
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = _DECODER.decode(text)
    except RecursionError:
        raise JSONRefused(f"JSON nested deeper than {max_depth} levels") from None
    except MemoryError:
        raise JSONRefused(f"{len(data)} bytes of JSON are too large to decode") from None
    except ValueError as exc:  # also UnicodeDecodeError and over-long integers
        raise JSONRefused(f"not valid JSON ({first_line(exc)})") from None
    if _more_containers(data, max_depth):  # fewer containers cannot nest deeper
        raw = data if isinstance(data, bytes) else text.encode("utf-8", "surrogatepass")
        if _nesting(raw) > max_depth:
            raise JSONRefused(f"JSON nested deeper than {max_depth} levels")
    return value


def _values(data: bytes | str) -> int:
    """An upper bound on the values of a document: its opening brackets, its commas and the
    top value (brackets and commas inside strings count too)."""
    if isinstance(data, bytes):
        return data.count(b"[") + data.count(b"{") + data.count(b",") + 1
    return data.count("[") + data.count("{") + data.count(",") + 1


def _more_containers(data: bytes | str, bound: int) -> bool:
    """Whether the document has more than ``bound`` opening brackets (inside strings too),
    counting the second kind only when the first is not enough."""
    if len(data) <= bound:
        return False
    if isinstance(data, bytes):
        found = data.count(b"{")
        return found > bound or found + data.count(b"[") > bound
    found = data.count("{")
    return found > bound or found + data.count("[") > bound


def _nesting(data: bytes) -> int:
    """How deep the containers of a valid JSON document nest (0 for a scalar), from its bytes
    at C speed and without recursion: its brackets outside strings, as +1 and -1, summed.

    Only for a document the decoder accepted: then every backslash outside an escape pair is
    impossible, every quote left after the escapes are gone delimits a string, and the
    brackets balance."""
    if b"\\" in data:  # escaped backslashes first: the one of ``\\\"`` ends no escape
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = data.translate(None, _NOT_STRUCTURE).replace(b'""', b"")  # strings without brackets
    if b'"' in marks:  # strings with brackets in them
        marks = _STRING.sub(b"", marks)
    steps = memoryview(marks.translate(_STEPS)).cast("b")  # 1 for an opening bracket, -1 closing
    return max(accumulate(steps), default=0)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line (its type when it has no message)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "…"


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


_NOT_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')
_STRING = re.compile(rb'"[^"]*"')  # once only quotes and brackets are left
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")

# One decoder for every call: json.loads builds a new one (and its C scanner) per call when
# given options.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
