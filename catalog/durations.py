"""Durations as people write them (``15m``, ``1h30m``, ``1.5s``, ``500ms``): one parser, with
the units and forms each place accepts (:class:`DurationForm`); each caller words its own
refusal and checks its own range.

    SCHEDULE.seconds("1h30m")   # 5400.0; None for what the form does not accept
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

UNITS: Mapping[str, float] = MappingProxyType(
    {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
)
"""Every unit a form may accept, in seconds."""


@dataclass(frozen=True)
class DurationForm:
    """What one place accepts: ``units`` (largest first), several of them in one duration
    (``compound``: ``1h30m``, each unit once, largest first), a number without a unit as
    seconds (``bare``), blanks around the number and unit (``spaces``), and at most
    ``digits``/``decimals`` digits before/after the point (None: any; 0 decimals: whole
    numbers only)."""

    units: tuple[str, ...]
    compound: bool = False
    bare: bool = False
    spaces: bool = False
    digits: int | None = None
    decimals: int | None = None
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # ASCII digits only: float() would read other scripts' digits too.
        whole = "[0-9]+" if self.digits is None else f"[0-9]{{1,{self.digits}}}"
        decimals = "+" if self.decimals is None else f"{{1,{self.decimals}}}"
        point = "" if self.decimals == 0 else rf"(?:\.[0-9]{decimals})?"
        blank = r"\s*" if self.spaces else ""
        number = f"({whole}{point})"
        if self.compound:
            # Each unit once, largest first, every one optional (the empty text is refused).
            body = "".join(f"(?:{number}{blank}{re.escape(unit)}{blank})?" for unit in self.units)
        else:
            names = "|".join(re.escape(unit) for unit in sorted(self.units, key=len, reverse=True))
            body = f"{number}{blank}({names}){'?' if self.bare else ''}{blank}"
        object.__setattr__(self, "_pattern", re.compile(f"{blank}{body}"))

    def seconds(self, text: str) -> float | None:
        """``text`` in seconds, or None when this form does not accept it."""
        found = self._pattern.fullmatch(text)
        if found is None or not text.strip():
            return None
        if self.compound:
            parts = zip(found.groups(), self.units, strict=True)
            return sum(float(number) * UNITS[unit] for number, unit in parts if number)
        number, unit = found.groups()
        return float(number) * (UNITS[unit] if unit else 1.0)


SCHEDULE = DurationForm(("d", "h", "m", "s"), compound=True, spaces=False, digits=6, decimals=0)
"""Schedules and the server's periods: ``90s``, ``15m``, ``1h30m``, ``2d12h`` (Go's and
systemd's way; blanks around the whole are the caller's to strip)."""

LIMIT = DurationForm(("d", "h", "m", "s", "ms"), bare=True, spaces=True)
"""The ``limits:`` section: seconds, or one number with ``ms``, ``s``, ``m``, ``h`` or ``d``."""

GO_TIMEOUT = DurationForm(("m", "s", "ms"), digits=6, decimals=9)
"""A Kubernetes API server's ``?timeout=10s`` (a Go duration; it sends one unit)."""
