"""A policy set's source text, read from a file within bounds (a policy file is user input)."""

from __future__ import annotations

from pathlib import Path

from catalog.files import FileTooLarge, read_capped
from catalog.trust.policy.errors import PolicyError, Problem

SOURCE_BYTES_MAX = 256 * 1024
"""A policy set's source in UTF-8: a page of ListPolicies (``POLICIES_PAGE_MAX`` of them) must
stay under the server's 4 MiB response limit, and a hand-written set is far smaller."""


def read_source(path: Path) -> str:
    """The text of the policy file ``path`` (UTF-8, newlines as ``read_text`` gives them),
    refused past ``SOURCE_BYTES_MAX`` bytes: never read whole, whatever the path names."""
    try:
        # A pipe too (``--policy <(…)``): the command's own argument.
        data = read_capped(path, SOURCE_BYTES_MAX, pipes=True)
    except FileTooLarge:
        message = f"larger than {SOURCE_BYTES_MAX} bytes: not a policy set"
        raise PolicyError([Problem(str(path), 1, (), message)]) from None
    except OSError as exc:
        raise PolicyError([Problem(str(path), 1, (), f"cannot read: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError([Problem(str(path), 1, (), "not UTF-8 text")]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
