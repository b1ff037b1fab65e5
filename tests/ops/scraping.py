"""Scraping ``/metrics`` over real HTTP, and reading the values back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


async def get(port: int, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response,
    ):
        return response.status, await response.text()


async def scrape(port: int, token: str | None = None) -> Samples:
    status, text = await get(port, token)
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def eventually(port: int, check: Callable[[Samples], bool], seconds: float = 20) -> Samples:
    """The first scrape within ``seconds`` for which ``check`` holds."""
    deadline = time.monotonic() + seconds
    while True:
        samples = await scrape(port)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError("the metrics never showed what was expected")
        await asyncio.sleep(0.2)
