"""An index run's requests go through the standard library's transport: a crawl is thousands of
small requests, each cheaper for the event loop there than through aiohttp (issue 16)."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

from catalog.oci.client import RegistryClient
from tests.harness.images import build_image
from tests.harness.registry import run_registry
from tests.pushing import push_built

# Indexes the registry at argv[1] into a fresh SQLite catalog; prints the images' manifests
# recorded and whether aiohttp was imported on the way.
_INDEX = """
import asyncio, sys
from catalog.app.catalog_service import CatalogService
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec

engine = make_engine(f"sqlite:///{sys.argv[2]}")
upgrade(engine)
catalog = CatalogService(session_factory(engine))
catalog.add_registry(RegistrySpec("r", sys.argv[1]))
stats = asyncio.run(catalog.index("r"))
print(stats.manifests_new, stats.errors, "aiohttp" in sys.modules)
"""


async def test_an_index_run_does_not_need_aiohttp(tmp_path: Path) -> None:
    with run_registry(tmp_path) as reg:
        async with RegistryClient(reg.host) as client:
            await push_built(client, "app/one", build_image(random.Random(1), layers=1), "v1")
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", _INDEX, reg.host, str(tmp_path / "catalog.db")],
            capture_output=True,
            text=True,
            check=True,
        )
    assert done.stdout.split() == ["1", "0", "False"]
