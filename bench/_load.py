"""The load generator the benchmarks share: ``conc`` callers issuing ``total`` calls, and how a
run's latencies are printed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench._stats import p50_p99


async def load(
    call: Callable[[], Awaitable[object]], total: int, conc: int
) -> tuple[float, list[float]]:
    """Calls per second and each call's latency in ms (sorted)."""
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return total / (time.perf_counter() - started), sorted(latencies)


def describe(
    label: str, rate: float, lat: list[float], unit: str = "req/s", width: int = 22
) -> str:
    p50, p99 = p50_p99(lat)
    return f"{label:<{width}} {rate:8.0f} {unit}   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
