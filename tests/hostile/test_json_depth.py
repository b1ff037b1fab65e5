"""``boundedjson.loads`` measures nesting on the document's bytes (brackets outside strings):
brackets, quotes and backslashes inside strings must neither hide a deep document nor refuse a
shallow one, whatever the escapes around them."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from catalog.oci.boundedjson import JSONRefused, loads

# Strings made to confuse a bracket count: brackets, quotes, backslashes, escapes of each.
_TRICKY = ["[", "]", "{", "}", '"', "\\", '\\"', '"[', "\\[", '\\\\"]]', "[]{}", "\u005c", "é[", ""]


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _random_value(rng: random.Random, depth: int) -> Any:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([*_TRICKY, 1, None, True, "".join(rng.choices(_TRICKY, k=3))])
    items = [_random_value(rng, depth - 1) for _ in range(rng.randrange(4))]
    if rng.random() < 0.5:
        return items
    return {rng.choice(_TRICKY) + str(i): item for i, item in enumerate(items)}


@pytest.mark.parametrize("seed", range(300))
def test_nesting_is_the_documents_whatever_its_strings_hold(seed: int) -> None:
    rng = random.Random(seed)
    value = _random_value(rng, rng.randrange(1, 9))
    depth = _depth(value)
    for raw in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        for data in (raw, raw.encode("utf-8", "surrogatepass")):
            assert loads(data, max_depth=max(depth, 1), max_values=10_000) == value
            if depth > 1:
                with pytest.raises(JSONRefused, match=f"nested deeper than {depth - 1} levels"):
                    loads(data, max_depth=depth - 1, max_values=10_000)


@pytest.mark.parametrize(
    "data",
    [
        b'["]]]]]]", [[[[]]]]]',  # closing brackets in a string do not hide depth 5
        b'["\\\\", [[[[]]]]]',  # an escaped backslash ends no string
        b'["\\"]]]]", [[[[]]]]]',  # an escaped quote ends no string
        b'{"\\\\\\"]]]]": [[[[]]]]}',  # an escaped backslash, then an escaped quote
        b'["\\u005c", [[[[]]]]]',  # an escaped backslash spelt \\u005c
    ],
)
def test_brackets_in_strings_hide_no_depth(data: bytes) -> None:
    assert loads(data, max_depth=5, max_values=100)
    with pytest.raises(JSONRefused, match="nested deeper than 4 levels"):
        loads(data, max_depth=4, max_values=100)


@pytest.mark.parametrize(
    "data",
    [b'["[[[[[[[[", "{{{{{{{{{"]', b'["\\\\[[[[", "\\"{{{{{{"]', b'{"[[[[[[": "]]]]]]]]"}'],
)
def test_brackets_in_strings_add_no_depth(data: bytes) -> None:
    assert loads(data, max_depth=1, max_values=100)


@pytest.mark.parametrize("text", ["[]", "[[],[]]", "[1,2,3,4,5]", '{"a":[1,{},","]}'])
def test_the_value_bound_counts_every_comma_and_bracket_up_to_the_documents_size(
    text: str,
) -> None:
    """Counted or not (a document shorter than the bound cannot exceed it), the bound is the
    same: every opening bracket, every comma (in strings too) and the top value."""
    values = text.count("[") + text.count("{") + text.count(",") + 1
    for data in (text, text.encode()):
        assert loads(data, max_depth=8, max_values=values) == json.loads(text)
        with pytest.raises(JSONRefused, match=f"more than {values - 1} JSON values"):
            loads(data, max_depth=8, max_values=values - 1)
