"""Streaming JSON: ijson's event parser with a nesting limit, typed reads and JSON paths.

ijson's prefix-tracking APIs (``parse``, ``items``) keep one prefix string per open level, so
memory grows with the square of the nesting depth (100,000 ``[`` need tens of GiB). This reader
uses ``basic_parse``, which has no prefixes, and stops at ``max_depth``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson

from catalog.formats._reader import CLOSE, OPEN, Event, Reader
from catalog.oci.boundedjson import first_line

# What ijson's C backend raises for bad input; SystemError wraps an over-long integer.
_PARSE_ERRORS = (ijson.JSONError, ValueError, SystemError, OverflowError)
_BUFFER = 64 * 1024
# What one whole value read from a stream (a component's licenses, a statement's subjects) may
# hold: it is built in memory, where the rest of a stream is read a value at a time. A decoder's
# own limits (licenses, subjects, tools) are checked on what it builds, which must fit first.
VALUE_ITEMS = 100_000  # scalars and containers (10,000 subjects are ~50,000)
VALUE_CHARACTERS = 16 * 1024 * 1024  # of its keys and strings


class EventReader(Reader):
    """Pulls events one at a time; every read names its JSON path when it fails."""

    def __init__(self, source: BinaryIO, what: str, *, max_depth: int) -> None:
        super().__init__(what)
        self._events: Iterator[Event] = ijson.basic_parse(source, use_float=True, buf_size=_BUFFER)
        self._max_depth = max_depth
        self._depth = 0

    def next(self, path: str) -> Event:
        try:
            event: Event = next(self._events)
        except StopIteration:
            self.fail(path, "unexpected end of JSON")
        except _PARSE_ERRORS as exc:
            self.fail(path, f"not valid JSON ({first_line(exc)})")
        if event[0] in OPEN:
            self._enter(path)
        elif event[0] in CLOSE:
            self._depth -= 1
        return event

    def finish(self) -> None:
        """Check that nothing but whitespace follows the document."""
        try:
            next(self._events)
        except StopIteration:
            return
        except _PARSE_ERRORS as exc:
            self.fail("$", f"not valid JSON ({first_line(exc)})")
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
        if event[0] not in OPEN:
            return
        outer = self._depth - 1
        try:
            for kind, _ in self._events:
                if kind in OPEN:
                    self._enter(path)
                elif kind in CLOSE:
                    self._depth -= 1
                    if self._depth == outer:
                        return
        except _PARSE_ERRORS as exc:
            self.fail(path, f"not valid JSON ({first_line(exc)})")
        self.fail(path, "unexpected end of JSON")

    def value(self, event: Event, path: str) -> Any:
        """Build the whole value that ``event`` starts, of at most ``VALUE_ITEMS`` items and
        ``VALUE_CHARACTERS`` characters."""
        return self._value(event, path, [VALUE_ITEMS, VALUE_CHARACTERS])

    def _value(self, event: Event, path: str, left: list[int]) -> Any:
        kind, value = event
        left[0] -= 1
        if isinstance(value, str):
            left[1] -= len(value)
        if left[0] < 0 or left[1] < 0:
            self.fail(
                path,
                f"a value larger than {VALUE_ITEMS} items or {VALUE_CHARACTERS}"
                " characters: not read whole",
            )
        if kind == "start_map":
            result: dict[str, Any] = {}
            for key, event in self.fields(path):
                left[1] -= len(key)
                result[key] = self._value(event, f"{path}.{key}", left)
            return result
        if kind == "start_array":
            return [self._value(item, item_path, left) for item, item_path in self.elements(path)]
        return value

    def _enter(self, path: str) -> None:
        self._depth += 1
        if self._depth > self._max_depth:
            self.fail(path, f"JSON nested deeper than {self._max_depth} levels")
