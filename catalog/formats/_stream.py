"""Streaming JSON: ijson's event parser with a nesting limit, typed reads and JSON paths.

ijson's prefix-tracking APIs (``parse``, ``items``) keep one prefix string per open level, so
memory grows with the square of the nesting depth (100,000 ``[`` need tens of GiB). This reader
uses ``basic_parse``, which has no prefixes, and stops at ``max_depth``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO, NoReturn

import ijson

from catalog.formats._json import MAX_TEXT, fail

Event = tuple[str, Any]

_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})
_KIND = {
    "start_map": "an object",
    "start_array": "an array",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
# What ijson's C backend raises for bad input; SystemError wraps an over-long integer.
_PARSE_ERRORS = (ijson.JSONError, ValueError, SystemError, OverflowError)
_BUFFER = 64 * 1024


class EventReader:
    """Pulls events one at a time; every read names its JSON path when it fails."""

    def __init__(self, source: BinaryIO, what: str, *, max_depth: int) -> None:
        self._events: Iterator[Event] = ijson.basic_parse(source, use_float=True, buf_size=_BUFFER)
        self._what = what
        self._max_depth = max_depth
        self._depth = 0

    def fail(self, path: str, problem: str) -> NoReturn:
        fail(f"{self._what} {path}", problem)

    def next(self, path: str) -> Event:
        try:
            event: Event = next(self._events)
        except StopIteration:
            self.fail(path, "unexpected end of JSON")
        except _PARSE_ERRORS as exc:
            self.fail(path, f"not valid JSON ({_first_line(exc)})")
        if event[0] in _OPEN:
            self._enter(path)
        elif event[0] in _CLOSE:
            self._depth -= 1
        return event

    def finish(self) -> None:
        """Check that nothing but whitespace follows the document."""
        try:
            next(self._events)
        except StopIteration:
            return
        except _PARSE_ERRORS as exc:
            self.fail("$", f"not valid JSON ({_first_line(exc)})")
        self.fail("$", "data after the end of the JSON document")

    def fields(self, path: str) -> Iterator[tuple[str, Event]]:
        """Each key of the object just opened, with its value's first event; the caller must
        consume the value (``skip``, ``value``, ``text``…) before asking for the next field."""
        while True:
            kind, key = self.next(path)
            if kind == "end_map":
                return
            yield key, self.next(path)

    def elements(self, path: str) -> Iterator[tuple[Event, str]]:
        """First event and path of each element of the array just opened."""
        index = 0
        while True:
            item_path = f"{path}[{index}]"
            event = self.next(item_path)
            if event[0] == "end_array":
                return
            yield event, item_path
            index += 1

    def skip(self, event: Event, path: str) -> None:
        """Discard the value that ``event`` starts, cheaply: this loop is the hot path."""
        if event[0] not in _OPEN:
            return
        outer = self._depth - 1
        try:
            for kind, _ in self._events:
                if kind in _OPEN:
                    self._enter(path)
                elif kind in _CLOSE:
                    self._depth -= 1
                    if self._depth == outer:
                        return
        except _PARSE_ERRORS as exc:
            self.fail(path, f"not valid JSON ({_first_line(exc)})")
        self.fail(path, "unexpected end of JSON")

    def value(self, event: Event, path: str) -> Any:
        """Build the whole value that ``event`` starts."""
        kind, value = event
        if kind == "start_map":
            result: dict[str, Any] = {}
            for key, event in self.fields(path):
                result[key] = self.value(event, f"{path}.{key}")
            return result
        if kind == "start_array":
            return [self.value(item, item_path) for item, item_path in self.elements(path)]
        return value

    def expect_object(self, event: Event, path: str) -> None:
        if event[0] != "start_map":
            self.fail(path, f"expected an object, got {_KIND.get(event[0], event[0])}")

    def expect_array(self, event: Event, path: str) -> None:
        if event[0] != "start_array":
            self.fail(path, f"expected an array, got {_KIND.get(event[0], event[0])}")

    def text(self, event: Event, path: str, *, max_len: int = MAX_TEXT) -> str | None:
        """A string field (``None`` for null); anything else is an error."""
        kind, value = event
        if kind == "null":
            return None
        if kind != "string":
            self.fail(path, f"expected a string, got {_KIND.get(kind, kind)}")
        # No surrogate check: ijson turns a lone high surrogate into "?" and refuses a low one.
        if len(value) > max_len:
            self.fail(path, f"string of {len(value)} characters is over the limit of {max_len}")
        if "\x00" in value:
            self.fail(path, "string contains NUL")
        return str(value)

    def _enter(self, path: str) -> None:
        self._depth += 1
        if self._depth > self._max_depth:
            self.fail(path, f"JSON nested deeper than {self._max_depth} levels")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
