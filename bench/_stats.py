"""The one way the benchmarks summarise a run's samples: p50 and p99."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def p50_p99(samples: Sequence[float]) -> tuple[float, float]:
    """The median and the 99th percentile (interpolated between the two samples around it,
    ``statistics.quantiles``' inclusive method); one sample is both."""
    if len(samples) == 1:
        return samples[0], samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[98]
