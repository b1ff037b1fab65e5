"""The registry client's tests run against both transports (aiohttp's, the standard library's)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["aiohttp", "stdlib"])
def registry_transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)
