"""One line for whatever a decoder raised on one document, so the document's failure can be
recorded as its index error and the work go on."""

from __future__ import annotations

from catalog.errors import FormatError
from catalog.oci.boundedjson import first_line


def decoder_failure(exc: Exception) -> str:
    """A ``FormatError`` says what and where; anything else (a ``RecursionError``,
    ``MemoryError``, ``ValueError`` the decoder did not foresee) is named by its type."""
    if isinstance(exc, FormatError):
        return first_line(exc, 1000)
    return f"cannot decode ({type(exc).__name__}: {first_line(exc)})"
