"""The benchmarks' p50/p99: one definition (bench._stats), checked on known samples."""

from __future__ import annotations

import pytest

from bench._stats import p50_p99


def test_p50_p99_of_known_samples() -> None:
    assert p50_p99([float(n) for n in range(1, 101)]) == pytest.approx((50.5, 99.01))
    assert p50_p99([3.0, 1.0, 2.0]) == pytest.approx((2.0, 2.98))  # unsorted input is fine
    assert p50_p99([7.0]) == (7.0, 7.0)
