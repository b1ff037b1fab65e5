"""Bounds on what an SBOM may contain, so a hostile document fails fast and costs little."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.formats._json import MAX_TEXT


@dataclass(frozen=True, slots=True)
class SbomLimits:
    """Over a limit the document is refused (``FormatError``), never silently truncated.

    ``max_depth`` counts JSON nesting, ``max_component_nesting`` CycloneDX components inside
    components; ``max_text`` bounds each recorded string (names, versions, purls, licenses);
    ``max_whole`` is the largest document parsed whole rather than streamed.
    """

    max_depth: int = 256
    max_component_nesting: int = 64
    max_text: int = MAX_TEXT
    max_tools: int = 256
    max_licenses: int = 256
    # Up to this many bytes a document is parsed whole (about twenty bytes of objects per byte
    # at worst, held while the record is); past it, it streams in flat memory.
    max_whole: int = 1024 * 1024
