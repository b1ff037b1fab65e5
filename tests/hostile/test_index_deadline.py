"""An index run has a deadline of its own: a registry slow enough everywhere, each request
within its limits, cannot hold a run (and the "being indexed already" refusal) open."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from catalog.cli.context import open_service
from catalog.index import run as index_run
from catalog.oci.errors import RegistryUnavailable
from catalog.store.registries import IndexStatus, RegistrySpec
from tests.hostile.registry_fakes import Request, send_json, serve


async def test_an_index_run_stops_at_its_deadline_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(req: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(20)  # well within the 120 s a request may take
        await send_json(writer, {"repositories": []})

    monkeypatch.setattr(index_run, "INDEX_DEADLINE", 2.0)
    service = open_service(f"sqlite:///{tmp_path / 'catalog.db'}")
    with serve(slow) as fake:
        service.add_registry(RegistrySpec(name="slow", host=fake.host))
        began = time.monotonic()
        with pytest.raises(RegistryUnavailable) as caught:
            await service.index("slow")
        took = time.monotonic() - began
    assert 2.0 <= took < 5.0
    message = "the index run of 'slow' was stopped at its deadline of 2 s"
    assert message in str(caught.value)
    view = service.get_registry("slow")
    assert view.last_index_status == IndexStatus.FAILED
    assert view.last_index_error is not None
    assert message in view.last_index_error
