"""What a JSON reader offers the SBOM decoders, whether it streams events or walks a parsed tree.

The decoders ask for one value at a time (``fields``, ``elements``, ``skip``, ``value``, typed
reads): the same code runs over a stream of any size and over a small document parsed whole.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, NoReturn

from catalog.formats._json import MAX_TEXT, fail

# (kind, value): ijson's event names; a container's value is its parsed node in a tree reader.
Event = tuple[str, Any]

OPEN = frozenset({"start_map", "start_array"})
CLOSE = frozenset({"end_map", "end_array"})
_KIND = {
    "start_map": "an object",
    "start_array": "an array",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


class Reader(ABC):
    """Reads one JSON document; every read names its JSON path when it fails."""

    def __init__(self, what: str) -> None:
        self._what = what

    @abstractmethod
    def next(self, path: str) -> Event:
        """The next event (the document's first, for the decoders)."""

    @abstractmethod
    def finish(self) -> None:
        """Check that nothing but whitespace follows the document."""

    @abstractmethod
    def fields(self, path: str) -> Iterator[tuple[str, Event]]:
        """Each key of the object just opened, with its value's first event; the caller must
        consume the value (``skip``, ``value``, ``text``…) before asking for the next field."""

    @abstractmethod
    def elements(self, path: str) -> Iterator[tuple[Event, str]]:
        """First event and path of each element of the array just opened."""

    @abstractmethod
    def skip(self, event: Event, path: str) -> None:
        """Discard the value that ``event`` starts."""

    @abstractmethod
    def value(self, event: Event, path: str) -> Any:
        """The whole value that ``event`` starts."""

    def fail(self, path: str, problem: str) -> NoReturn:
        fail(f"{self._what} {path}", problem)

    def node(self, event: Event) -> Any:
        """The parsed value ``event`` starts when the document was parsed whole, for a decoder's
        fast path; ``None`` when it streams."""
        return None

    def event(self, value: Any) -> Event:
        """The first event of a value :meth:`node` handed out, opened as the value to read
        next: a decoder's fast path giving a value back to the reads (to refuse it where and as
        they do). Only a reader that hands out values has it."""
        raise NotImplementedError("a streaming reader hands out no values")

    def plain(self) -> bool:
        """Whether no string of the document can hold a NUL or an unpaired surrogate (a parsed
        document's bytes tell): then a string needs only its length checked."""
        return False

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
        if len(value) > max_len:
            self.fail(path, f"string of {len(value)} characters is over the limit of {max_len}")
        if "\x00" in value:
            self.fail(path, "string contains NUL")
        # No surrogate check here: ijson turns a lone high surrogate into "?" and refuses a low
        # one; json.loads keeps both, so the tree reader checks (the store would refuse them).
        return str(value)
