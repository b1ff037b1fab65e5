"""Base64 fields: standard or URL-safe alphabet, padding optional (DSSE and JWS allow both)."""

from __future__ import annotations

import binascii
import re
from typing import Any

from catalog.formats._json import fail, type_name

_STANDARD = re.compile(r"[A-Za-z0-9+/]*(=*)")
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]*(=*)")
_FROM_URL_SAFE = str.maketrans("-_", "+/")


def b64decode(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        fail(path, f"expected a base64 string, got {type_name(value)}")
    # Go's decoder, which wrote and reads most of these, skips line breaks: real signatures and
    # timestamps come wrapped at 76 columns.
    value = value.replace("\r", "").replace("\n", "")
    match = _STANDARD.fullmatch(value)
    if match is None:
        match = _URL_SAFE.fullmatch(value)
        if match is None:
            fail(path, "not base64: characters outside the base64 alphabet")
        value = value.translate(_FROM_URL_SAFE)
    digits = match.start(1)
    if digits % 4 == 1:
        fail(path, "not base64: truncated")
    if len(value) % 4 or len(value) - digits > 2:
        value = value[:digits] + "=" * (-digits % 4)
    try:
        # binascii reads an ASCII str in place: a payload of many megabytes is not copied first.
        return binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error as exc:
        fail(path, f"not base64 ({exc})")
