"""An answer too large to send, cut by one stated rule rather than refused.

Byte-bounded pages (:mod:`catalog.api.paging`) keep lists under the server's send limit, but one
item can be over it alone: a package with megabytes of licenses, an artifact with thousands of
signatures. :func:`cut_to_fit` cuts it to :data:`~catalog.api.paging.PAGE_BYTES`, and the
servicer tells the caller what was cut in the ``xregistry-cut`` trailing metadata.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from catalog.api.paging import PAGE_BYTES, encoded_size, varint_size

CUT_METADATA = "xregistry-cut"  # trailing metadata: what cut_to_fit dropped from an answer
_CUT_SHOWN = 8  # lists named in that metadata, at most


def _element_size(field: FieldDescriptor, value: Any) -> int:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return encoded_size(value)
    if isinstance(value, str | bytes):
        size = len(value.encode() if isinstance(value, str) else value)
        return size + 2 + varint_size(size)
    return 11  # a scalar: its tag and at most a ten-byte varint


def _lists(
    message: Message, path: str, found: list[tuple[int, Message, FieldDescriptor, str]]
) -> None:
    """Every non-empty repeated field (maps too) in ``message`` and below, with its bytes."""
    for field, value in message.ListFields():
        where = f"{path}{field.name}"
        if not field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                _lists(value, f"{where}.", found)
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            size = sum(len(str(k)) + len(str(v)) + 8 for k, v in value.items())
        else:
            size = sum(_element_size(field, item) for item in value)
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for number, item in enumerate(value):
                    _lists(item, f"{where}[{number}].", found)
        found.append((size, message, field, where))


def cut_to_fit(message: Message, limit: int = PAGE_BYTES) -> list[str]:
    """Cut ``message`` until it encodes in ``limit`` bytes, by one rule: the list (repeated
    field or map, at any depth) that takes the most bytes loses items from its end (a map its
    last keys in sorted order), again while the message is over. Returns what was cut, as
    ``"PATH: N of M kept"`` lines; empty when it fitted already."""
    totals: dict[str, tuple[int, int]] = {}
    while (excess := message.ByteSize() - limit) > 0:
        found: list[tuple[int, Message, FieldDescriptor, str]] = []
        _lists(message, "", found)
        if not found:
            break  # nothing left to cut: only fields bounded where they are stored
        _, owner, field, where = max(found, key=lambda entry: entry[0])
        items = getattr(owner, field.name)
        before = len(items)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key in sorted(items)[::-1]:
                excess -= len(str(key)) + len(str(items[key])) + 8
                del items[key]
                if excess <= 0:
                    break
        else:
            keep = before
            while keep and excess > 0:
                keep -= 1
                excess -= _element_size(field, items[keep])
            del items[keep:]
        total = totals[where][1] if where in totals else before
        totals[where] = (len(items), total)
    return [f"{where}: {kept} of {total} kept" for where, (kept, total) in totals.items()]


def cut_note(cuts: list[str]) -> str:
    """The ``xregistry-cut`` metadata value for ``cuts`` (one line, ASCII, short)."""
    shown = "; ".join(cuts[:_CUT_SHOWN])
    return shown + (f"; {len(cuts) - _CUT_SHOWN} more" if len(cuts) > _CUT_SHOWN else "")
