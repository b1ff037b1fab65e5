"""The ``limits:`` section of the serve configuration: how much any registry or caller may cost.

```yaml
limits:                     # every key is optional: these are the defaults
  registry:                 # every registry client the server opens (index, gate, replication)
    json_limit: 8MiB        # a catalog, tag list, referrers or error body
    token_limit: 64KiB      # a token server's token
    request_timeout: 120s   # a whole request (a blob download: the throughput floor instead)
    min_throughput: 16KiB   # bytes/s a blob download must keep up ...
    throughput_window: 30s  # ... over this window, or it is dropped and resumed
    max_pages: 10000        # pages of one listing
  calls_at_once: 64         # gRPC calls one caller may have running; past it RESOURCE_EXHAUSTED
  index_run: 6h             # one index run of a registry
  replication_task: 2h      # one image copied
  decision_log:
    capacity: 20000         # decisions waiting to be written; past it the gate denies
    batch: 500              # rows per INSERT
    stalled_after: 5s       # a write waiting this long turns health NOT_SERVING
    retry_first: 100ms      # back-off of a failed write: first wait ...
    retry_most: 2s          # ... doubling up to this
```

Every value has bounds: a cap set so low that normal work fails, or so high that it no longer
protects anything, is refused when the file is loaded, with the key, the value and the range.
Sizes are bytes (an integer, or a number with B, KiB, MiB or GiB); durations are seconds (a
number, or a number with ms, s, m, h or d).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from catalog.durations import LIMIT
from catalog.oci.options import RegistryOptions

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?\s*")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
KiB, MiB, GiB = 1024, 1024**2, 1024**3


def _bytes(value: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def _size(low: int, high: int) -> BeforeValidator:
    def parse(value: Any) -> int | None:
        if value is None:
            return None
        text = (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )
        match = _SIZE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"{value!r} is not a size: use bytes, or a number with KiB, MiB or GiB"
            )
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
        if not low <= size <= high:
            raise ValueError(f"{_bytes(size)} is outside {_bytes(low)} to {_bytes(high)}")
        return size

    return BeforeValidator(parse)


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _duration(low: float, high: float) -> BeforeValidator:
    def parse(value: Any) -> float | None:
        if value is None:
            return None
        text = (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )
        seconds = LIMIT.seconds(text) if isinstance(text, str) else None
        if seconds is None:
            raise ValueError(
                f"{value!r} is not a duration: use seconds, or a number with ms, s, m, h or d"
            )
        if not low <= seconds <= high:
            raise ValueError(f"{_seconds(seconds)} is outside {_seconds(low)} to {_seconds(high)}")
        return seconds

    return BeforeValidator(parse)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryLimits(_Strict):
    """The limits of every registry client the server opens (``RegistryOptions``; a key left
    out keeps its default there)."""

    json_limit: Annotated[int | None, _size(64 * KiB, 256 * MiB)] = None
    token_limit: Annotated[int | None, _size(4 * KiB, 1 * MiB)] = None
    request_timeout: Annotated[float | None, _duration(1, 3600)] = None
    min_throughput: Annotated[int | None, _size(1, 1 * GiB)] = None
    throughput_window: Annotated[float | None, _duration(1, 3600)] = None
    max_pages: int | None = Field(default=None, ge=1, le=1_000_000)

    def options(self) -> RegistryOptions:
        """What a client is opened with; each opening adds its registry's TLS and credentials."""
        return RegistryOptions(**self.model_dump(exclude_none=True))


class DecisionLogLimits(_Strict):
    """The gate's decision log (``catalog.gate.DecisionLog``; a key left out keeps its
    default there)."""

    capacity: int | None = Field(default=None, ge=100, le=10_000_000)
    batch: int | None = Field(default=None, ge=1, le=10_000)
    stalled_after: Annotated[float | None, _duration(0.5, 600)] = None
    retry_first: Annotated[float | None, _duration(0.01, 60)] = None
    retry_most: Annotated[float | None, _duration(0.01, 600)] = None

    @model_validator(mode="after")
    def _both_delays(self) -> DecisionLogLimits:
        if (self.retry_first is None) != (self.retry_most is None):
            raise ValueError("give retry_first and retry_most together")
        first, most = self.retry_first, self.retry_most
        if first is not None and most is not None and most < first:
            raise ValueError(f"retry_most ({most:g} s) is shorter than retry_first ({first:g} s)")
        return self

    def options(self) -> dict[str, Any]:
        """``DecisionLog``'s keyword arguments for what this section sets."""
        given = self.model_dump(exclude_none=True, exclude={"retry_first", "retry_most"})
        if self.retry_first is not None:
            given["retry_delay"] = (self.retry_first, self.retry_most)
        return given


class LimitsSettings(_Strict):
    registry: RegistryLimits = Field(default_factory=RegistryLimits)
    # None: the default of catalog.call_limits.CALLS_AT_ONCE
    calls_at_once: int | None = Field(default=None, ge=4, le=100_000)
    # None: the defaults of catalog.index.run.INDEX_DEADLINE and replication.worker.TASK_DEADLINE
    index_run: Annotated[float | None, _duration(60, 7 * 86400)] = None
    replication_task: Annotated[float | None, _duration(60, 7 * 86400)] = None
    decision_log: DecisionLogLimits = Field(default_factory=DecisionLogLimits)
