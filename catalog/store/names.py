"""The grammar registry, rule and policy names share, checked without SQL (the API's name
parsing and the CLI with ``--server`` use it)."""

from __future__ import annotations

from catalog.errors import InvalidArgument
from catalog.oci.secrets import is_name


def validate_name(name: str, what: str = "registry name") -> str:
    """``name`` when it fits the grammar registry, rule and policy names share; ``what`` names
    it in the error."""
    if not is_name(name):
        shown = repr(name) if len(name) <= 63 else f"of {len(name)} characters"
        raise InvalidArgument(
            f"invalid {what} {shown}: 1-63 of lower-case letters, digits and '-', "
            "starting with a letter"
        )
    return name
