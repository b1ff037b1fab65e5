"""The reads of ``_stream`` over a document parsed whole, for documents small enough to hold.

``boundedjson.loads`` parses at C speed under the same depth limit as the stream (the
document's size bounds its values); skipping a value then costs nothing, and a value is the
parsed node. An SBOM of a few hundred packages decodes several times faster this way than
event by event in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from catalog.formats._json import MAX_TEXT
from catalog.formats._reader import OPEN, Event, Reader
from catalog.oci.boundedjson import JSONRefused, loads

REFUSED = object()
_KINDS: dict[type, str] = {
    dict: "start_map",
    list: "start_array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
# The only ways a string of strict UTF-8 JSON gets a NUL or a surrogate: these escapes (the JSON
# decoder refuses raw control characters, the UTF-8 decoder encoded surrogates). An escaped
# backslash before "u0000" matches too: the document is then merely checked string by string.
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD])")


def parse(data: bytes, *, max_depth: int) -> Any:
    """The whole document, or ``REFUSED`` when it is not JSON or nested deeper than
    ``max_depth``: then the stream reads it again, to refuse it where and as it always has."""
    try:
        # At most one value per byte: the size is the bound here, as it is for the stream.
        return loads(data, max_depth=max_depth, max_values=len(data) + 1)
    except JSONRefused:
        return REFUSED


def plain(data: bytes) -> bool:
    """Whether no string of the (valid JSON) document can hold a NUL or an unpaired surrogate."""
    return _RISKY_ESCAPE.search(data) is None


class TreeReader(Reader):
    """Walks a parsed document. The node a container event opens is the last one handed out:
    the decoders open (or skip) a value before asking for the next. ``plain``: what
    :func:`plain` said of the document's bytes."""

    def __init__(self, document: Any, what: str, *, plain: bool = False) -> None:
        super().__init__(what)
        self._root: Any = document
        self._opened: Any = None
        self._plain = plain

    def next(self, path: str) -> Event:
        return self.event(self._root)

    def finish(self) -> None:
        return  # the parse checked the whole document

    def fields(self, path: str) -> Iterator[tuple[str, Event]]:
        return self._fields(self._opened)

    def elements(self, path: str) -> Iterator[tuple[Event, str]]:
        return self._elements(self._opened, path)

    def skip(self, event: Event, path: str) -> None:
        return

    def value(self, event: Event, path: str) -> Any:
        return event[1]

    def node(self, event: Event) -> Any:
        return event[1]

    def plain(self) -> bool:
        return self._plain

    def text(self, event: Event, path: str, *, max_len: int = MAX_TEXT) -> str | None:
        if self._plain and event[0] == "string" and len(event[1]) <= max_len:
            return str(event[1])
        value = super().text(event, path, max_len=max_len)
        if value is not None and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                self.fail(path, "string contains an unpaired surrogate")
        return value

    # ``event`` inlined in the two loops below: they run once per value of an SBOM.
    def _fields(self, node: dict[str, Any]) -> Iterator[tuple[str, Event]]:
        for key, value in node.items():
            kind = _KINDS[type(value)]
            if kind in OPEN:
                self._opened = value
            yield key, (kind, value)

    def _elements(self, node: list[Any], path: str) -> Iterator[tuple[Event, str]]:
        for index, item in enumerate(node):
            kind = _KINDS[type(item)]
            if kind in OPEN:
                self._opened = item
            yield (kind, item), f"{path}[{index}]"

    def event(self, value: Any) -> Event:
        kind = _KINDS[type(value)]
        if kind in OPEN:
            self._opened = value
        return kind, value
