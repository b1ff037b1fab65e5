"""OCI-style digests (``alg:hex``) for the algorithms a manifest digest can use."""

from __future__ import annotations

import re

_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"[0-9a-fA-F]+")


def digest(algorithm: str, hex_value: str) -> str | None:
    """``"sha256:<hex>"`` in lower case, or ``None`` for another algorithm or a malformed value."""
    expected = _HEX_LENGTH.get(algorithm.lower())
    if expected is None or len(hex_value) != expected or not _HEX.fullmatch(hex_value):
        return None
    return f"{algorithm.lower()}:{hex_value.lower()}"


def parse(text: str) -> str | None:
    algorithm, _, hex_value = text.partition(":")
    return digest(algorithm, hex_value)
