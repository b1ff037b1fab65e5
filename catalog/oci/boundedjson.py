"""JSON documents decoded under bounds, so that no input can exhaust the stack or the memory.

``json.loads`` recurses in C once per nesting level (a ``RecursionError`` near 1,000 levels,
wherever the caller's stack stood), and ``[[],[],…]`` costs about twenty bytes of objects per
input byte. :func:`loads` counts the values first (every comma and bracket: an upper bound, at
C speed, before anything is built), decodes strict UTF-8 without NaN or Infinity, then checks
the nesting without recursion. Every failure is one :class:`JSONRefused` line.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn


class JSONRefused(ValueError):
    """The document is not JSON, or is over a bound; the message says which, in one line."""


def loads(data: bytes | str, *, max_depth: int, max_values: int) -> Any:
    """Parse a whole document: at most ``max_values`` values, nested ``max_depth`` deep."""
    values = upper_bound_of_values(data)
    if values > max_values:
        raise JSONRefused(
            f"more than {max_values} JSON values (counting every comma and bracket: {values})"
        )
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise JSONRefused(f"JSON nested deeper than {max_depth} levels") from None
    except MemoryError:
        raise JSONRefused(f"{len(data)} bytes of JSON are too large to decode") from None
    except ValueError as exc:  # also UnicodeDecodeError and over-long integers
        raise JSONRefused(f"not valid JSON ({first_line(exc)})") from None
    check_depth(value, max_depth)
    return value


def upper_bound_of_values(data: bytes | str) -> int:
    """At least the number of values in the document: one per comma and per opening bracket,
    plus the top one (commas and brackets inside strings count too)."""
    if isinstance(data, bytes):
        return data.count(b",") + data.count(b"[") + data.count(b"{") + 1
    return data.count(",") + data.count("[") + data.count("{") + 1


def check_depth(value: Any, max_depth: int) -> None:
    # Iterative, so that a document json.loads accepted cannot exhaust the stack here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise JSONRefused(f"JSON nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line (its type when it has no message)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "…"


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")
