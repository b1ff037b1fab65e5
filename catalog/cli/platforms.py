"""``--platform os/arch[/variant]``: the option; what it selects is
:mod:`catalog.oci.platforms`' (``resolved``, ``PlatformChoice``)."""

from __future__ import annotations

from typing import Any

import click


def platform_option(func: Any) -> Any:
    return click.option(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="Of an index (a multi-platform image), the image for this platform, e.g. "
        "linux/amd64 or linux/arm/v7.",
    )(func)
