"""Whole-document JSON for small documents, and typed field access that names the JSON path.

Every failure is a ``FormatError`` saying what and where, so a decoder can read fields without
guarding each one. Strings taken into records are checked for length, NUL and unpaired
surrogates: the store and the API must never choke on what a decoder accepted.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from catalog.errors import FormatError
from catalog.oci.boundedjson import JSONRefused, loads

MAX_DEPTH = 64
# Whole documents (signatures, envelopes, bundles, statements up to intoto.INLINE_LIMIT) are
# built in memory: at ~70 bytes a value, this keeps one under ~100 MB whatever its shape.
MAX_VALUES = 1_000_000
MAX_TEXT = 64 * 1024
_DECIMAL = re.compile(r"-?[0-9]{1,19}")


def fail(path: str, problem: str) -> NoReturn:
    raise FormatError(f"{path}: {problem}")


def load(data: bytes | str, what: str) -> Any:
    """Parse a whole JSON document (UTF-8, no NaN/Infinity, nesting and value count bounded)."""
    try:
        return loads(data, max_depth=MAX_DEPTH, max_values=MAX_VALUES)
    except JSONRefused as exc:
        fail(what, str(exc))


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def as_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(path, f"expected an object, got {type_name(value)}")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        fail(path, f"expected an array, got {type_name(value)}")
    return value


def as_text(value: Any, path: str, *, max_len: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        fail(path, f"expected a string, got {type_name(value)}")
    check_text(value, path, max_len=max_len)
    return value


def check_text(value: str, path: str, *, max_len: int = MAX_TEXT) -> None:
    if len(value) > max_len:
        fail(path, f"string of {len(value)} characters is over the limit of {max_len}")
    if "\x00" in value:
        fail(path, "string contains NUL")
    if value.isascii():
        return  # no surrogate in it: no need to copy it to find out
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        fail(path, "string contains an unpaired surrogate")


def req_object(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    if key not in obj:
        fail(path, f"missing {key!r}")
    return as_object(obj[key], f"{path}.{key}")


def opt_object(obj: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = obj.get(key)
    return None if value is None else as_object(value, f"{path}.{key}")


def opt_list(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key)
    return [] if value is None else as_list(value, f"{path}.{key}")


def req_str(obj: dict[str, Any], key: str, path: str, *, max_len: int = MAX_TEXT) -> str:
    if key not in obj:
        fail(path, f"missing {key!r}")
    return as_text(obj[key], f"{path}.{key}", max_len=max_len)


def opt_str(obj: dict[str, Any], key: str, path: str, *, max_len: int = MAX_TEXT) -> str | None:
    value = obj.get(key)
    return None if value is None else as_text(value, f"{path}.{key}", max_len=max_len)


def opt_int(obj: dict[str, Any], key: str, path: str) -> int | None:
    """An integer, also as a decimal string: proto3 JSON writes int64 values as strings."""
    value = obj.get(key)
    if value is None:
        return None
    where = f"{path}.{key}"
    if isinstance(value, bool):
        fail(where, "expected an integer, got a boolean")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        result = int(value)
    else:
        fail(where, f"expected an integer, got {type_name(value)} {str(value)[:40]!r}")
    if not -(2**63) <= result < 2**63:
        fail(where, "integer out of the int64 range")
    return result


def str_map(value: Any, path: str, *, max_len: int = MAX_TEXT) -> dict[str, str]:
    """An object whose values are all strings (digest sets, annotations)."""
    obj = as_object(value, path)
    for key, item in obj.items():
        check_text(key, path, max_len=max_len)
        as_text(item, f"{path}.{key}", max_len=max_len)
    return dict(obj)
