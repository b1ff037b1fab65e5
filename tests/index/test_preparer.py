"""SBOMs prepared in worker processes are the SBOMs prepared on the crawl's thread, and a
worker that dies loses none of them: those it held and those after are prepared on the thread."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from catalog.index._preparer import SbomPreparer
from catalog.store.documents import SbomDoc
from catalog.store.sbom_rows import PreparedSbom

_BUDGET = 16 * 1024 * 1024


def _spdx(seed: int, count: int) -> bytes:
    packages: list[dict[str, Any]] = [
        {
            "name": f"lib{seed}-{i}",
            "versionInfo": f"1.{i}",
            "licenseConcluded": "MIT",
            "externalRefs": [
                {"referenceType": "purl", "referenceLocator": f"pkg:npm/lib{seed}-{i}@1.{i}"}
            ],
        }
        for i in range(count)
    ]
    if seed % 5 == 4:  # some end early: the error travels back too
        packages[count // 2]["versionInfo"] = 7
    return json.dumps(
        {"spdxVersion": "SPDX-2.3", "name": f"d{seed}", "packages": packages}
    ).encode()


def _expected(digest: str, data: bytes) -> PreparedSbom | None:
    doc = SbomDoc(digest, data)
    doc.prepare(_BUDGET)
    return doc.prepared


@pytest.fixture
def thread() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def _docs(count: int, packages: int) -> list[tuple[SbomDoc, PreparedSbom | None]]:
    docs = []
    for n in range(count):
        digest, data = f"sha256:{n:064x}", _spdx(n, packages)
        docs.append((SbomDoc(digest, io.BytesIO(data)), _expected(digest, data)))
    return docs


async def test_sboms_prepared_in_a_worker_process_are_those_of_the_thread(
    thread: ThreadPoolExecutor,
) -> None:
    preparer = SbomPreparer(thread, processes=1, after=0)
    try:
        await preparer.start()
        (pid,) = preparer.pids
        assert pid != os.getpid()
        docs = _docs(10, 50)
        await asyncio.gather(*(preparer.prepare(doc, _BUDGET) for doc, _ in docs))
        assert preparer.in_processes == 10
        assert not preparer.broken
        for doc, expected in docs:
            assert expected is not None
            assert doc.prepared == expected
        # Over its budget: nothing prepared, and the writer streams the bytes it was sent.
        (doc, _), data = _docs(1, 50)[0], _spdx(0, 50)
        await preparer.prepare(doc, 1000)
        assert doc.prepared is None
        assert doc.source == data
    finally:
        await preparer.close()


async def test_a_worker_that_dies_loses_no_sbom(thread: ThreadPoolExecutor) -> None:
    preparer = SbomPreparer(thread, processes=1, after=0)
    try:
        await preparer.start()
        (pid,) = preparer.pids
        docs = _docs(12, 1000)  # ten milliseconds or more each: some are in flight at the kill
        tasks = [asyncio.ensure_future(preparer.prepare(doc, _BUDGET)) for doc, _ in docs]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(120):  # nothing waits for the dead process
            await asyncio.gather(*tasks)
        assert preparer.broken
        assert 1 <= preparer.in_processes < 12
        for doc, expected in docs:
            assert doc.prepared == expected
        # And after: the thread.
        (late, expected), *_ = _docs(1, 10)
        await preparer.prepare(late, _BUDGET)
        assert late.prepared == expected
    finally:
        await preparer.close()


async def test_few_sboms_start_no_process(thread: ThreadPoolExecutor) -> None:
    preparer = SbomPreparer(thread, processes=1, after=5)
    docs = _docs(5, 10)
    for doc, _ in docs:
        await preparer.prepare(doc, _BUDGET)
    await preparer.close()
    assert preparer.pids == set()
    assert preparer.in_processes == 0
    assert [doc.prepared for doc, _ in docs] == [expected for _, expected in docs]
