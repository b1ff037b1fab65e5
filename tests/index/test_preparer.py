"""SBOMs prepared in worker processes are the SBOMs prepared on the crawl's thread, and a
worker that dies loses none of them: those it held and those after are prepared on the thread;
a crawl whose worker is killed records every SBOM with all its packages. An SBOM in a cosign
attestation's envelope is prepared ahead too, with the rows the writer made of it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import random
import signal
import sys
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from catalog.app.catalog_service import CatalogService
from catalog.index import _preparer
from catalog.index._preparer import SbomPreparer
from catalog.index.layers import decode_attachment, held_bytes
from catalog.oci import mediatypes as mt
from catalog.oci.client import RegistryClient
from catalog.oci.repository import RemoteRepository
from catalog.store import documents
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.documents import DecodedDocuments, SbomDoc
from catalog.store.models import Sbom, SbomPackage
from catalog.store.registries import RegistrySpec
from catalog.store.sbom_rows import PreparedSbom
from tests.harness.images import Blob, BuiltManifest, build_artifact, build_image
from tests.harness.processes import ends_within
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built

_BUDGET = 16 * 1024 * 1024
_SPDX = "application/spdx+json"


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


async def test_sboms_go_to_the_workers_in_batches_bounded_in_count_and_bytes(
    thread: ThreadPoolExecutor,
) -> None:
    """A task's hand-off is paid once for several SBOMs; a batch holds at most BATCH_SBOMS of
    them and BATCH_BYTES (so what is in flight stays bounded as with one SBOM a task)."""
    preparer = SbomPreparer(thread, processes=1, after=0)
    try:
        await preparer.start()
        small = _docs(2 * _preparer.BATCH_SBOMS, 20)
        await asyncio.gather(*(preparer.prepare(doc, _BUDGET) for doc, _ in small))
        assert preparer.batches == 2
        assert [doc.prepared for doc, _ in small] == [expected for _, expected in small]
        large = _docs(6, 2500)
        size = len(_spdx(0, 2500))
        assert _preparer.BATCH_BYTES // 3 < size <= _preparer.BATCH_BYTES // 2
        await asyncio.gather(*(preparer.prepare(doc, _BUDGET) for doc, _ in large))
        assert preparer.batches == 2 + 3  # two a batch
        assert [doc.prepared for doc, _ in large] == [expected for _, expected in large]
        assert preparer.in_processes == len(small) + len(large)
    finally:
        await preparer.close()


async def test_an_sbom_alone_waits_no_longer_than_the_linger(thread: ThreadPoolExecutor) -> None:
    preparer = SbomPreparer(thread, processes=1, after=0)
    try:
        await preparer.start()
        ((doc, expected),) = _docs(1, 10)
        async with asyncio.timeout(_preparer.LINGER + 5):
            await preparer.prepare(doc, _BUDGET)
        assert doc.prepared == expected
        assert preparer.batches == 1
    finally:
        await preparer.close()


async def test_closing_cancels_the_sboms_still_waiting(thread: ThreadPoolExecutor) -> None:
    """A crawl that fails leaves SBOMs queued or in flight: closing the preparer ends their
    waits (none hangs on a batch that will never be answered)."""
    preparer = SbomPreparer(thread, processes=1, after=0)
    await preparer.start()
    docs = _docs(40, 1000)  # several batches: some in flight, some waiting for a slot
    tasks = [asyncio.ensure_future(preparer.prepare(doc, _BUDGET)) for doc, _ in docs]
    await asyncio.sleep(0)
    async with asyncio.timeout(60):
        await preparer.close()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert any(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)


async def test_a_worker_does_not_import_the_crawls_main_module(
    thread: ThreadPoolExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spawned process runs the parent's ``__main__`` script again (as ``__mp_main__``): the
    CLI's command module, a bench's harness, imported for nothing in every worker."""
    marker = tmp_path / "imported"
    script = tmp_path / "main_script.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    preparer = SbomPreparer(thread, processes=1, after=0)
    try:
        await preparer.start()
        assert preparer.pids
        assert sys.modules["__main__"] is main
        ((doc, expected),) = _docs(1, 10)
        await preparer.prepare(doc, _BUDGET)
        assert doc.prepared == expected
        assert preparer.in_processes == 1
    finally:
        await preparer.close()
    assert not marker.exists()


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


async def test_a_worker_that_hangs_is_killed_and_its_sboms_go_to_the_thread(
    thread: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch not answered by its deadline (its worker stopped from outside): the worker is
    killed and its SBOMs, and those after, are prepared on the thread with the rows a worker
    gives: none becomes an error (an undecodable record would keep it from every later crawl)."""
    monkeypatch.setattr(_preparer, "BATCH_DEADLINE", 1.0)
    preparer = SbomPreparer(thread, processes=1, after=0)
    try:
        await preparer.start()
        (pid,) = preparer.pids
        os.kill(pid, signal.SIGSTOP)
        docs = _docs(3, 10)
        async with asyncio.timeout(30):
            await asyncio.gather(*(preparer.prepare(doc, _BUDGET) for doc, _ in docs))
        assert preparer.broken
        assert preparer.in_processes == 0
        for doc, expected in docs:
            assert doc.prepared == expected
        assert await asyncio.to_thread(ends_within, pid, 30)  # killed, not left stopped
        (late, expected), *_ = _docs(1, 10)
        await preparer.prepare(late, _BUDGET)
        assert late.prepared == expected
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        await preparer.close()


async def test_a_pool_that_cannot_be_made_leaves_the_sboms_to_the_thread(
    thread: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Making the pool fails where its queues cannot get POSIX semaphores (no writable
    /dev/shm): the crawl goes on, on its thread, and says why once."""

    def no_semaphores(*args: object, **kwargs: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(_preparer, "ProcessPoolExecutor", no_semaphores)
    preparer = SbomPreparer(thread, processes=1, after=0)
    try:
        await preparer.start()
        assert preparer.broken
        docs = _docs(4, 10)
        for doc, _ in docs:
            await preparer.prepare(doc, _BUDGET)
        assert preparer.in_processes == 0
        assert [doc.prepared for doc, _ in docs] == [expected for _, expected in docs]
    finally:
        await preparer.close()
    assert "SBOM worker processes did not start" in caplog.text


async def test_few_sboms_start_no_process(thread: ThreadPoolExecutor) -> None:
    preparer = SbomPreparer(thread, processes=1, after=5)
    docs = _docs(5, 10)
    for doc, _ in docs:
        await preparer.prepare(doc, _BUDGET)
    await preparer.close()
    assert preparer.pids == set()
    assert preparer.in_processes == 0
    assert [doc.prepared for doc, _ in docs] == [expected for _, expected in docs]


async def test_a_crawl_whose_worker_dies_records_every_sbom(
    registry: RunningRegistry, tmp_path: Path, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = 12
    async with RegistryClient(registry.host) as client:
        for n in range(images):
            image = build_image(rng, layers=1, layer_size=64)
            await push_built(client, "killed/app", image, f"v{n}")
            sbom = build_artifact(image, "application/spdx+json", _spdx(n, 300), _SPDX)
            await push_built(client, "killed/app", sbom)
    killed: list[int] = []
    prepare = SbomPreparer.prepare

    async def prepare_then_kill(self: SbomPreparer, doc: SbomDoc, budget: int) -> None:
        await self.start()  # every SBOM to the worker (none on the thread while it starts)
        await prepare(self, doc, budget)
        if self.in_processes and not killed:  # the others are in flight or waiting
            for pid in self.pids:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    monkeypatch.setattr(_preparer, "PROCESS_AFTER", 0)
    monkeypatch.setattr(_preparer, "default_processes", lambda: 1)
    monkeypatch.setattr(SbomPreparer, "prepare", prepare_then_kill)
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    catalog = CatalogService(sessions)
    catalog.add_registry(RegistrySpec("local", registry.host))
    async with asyncio.timeout(150):
        stats = await catalog.index("local")
    assert killed
    assert stats.documents == images
    # The only errors: the SBOMs whose package list ends early, as on the thread.
    errors = catalog.list_index_errors("local").items
    assert len(errors) == stats.errors == 2
    assert all("packages after #150: " in error.reason for error in errors)
    with sessions() as session:
        counts = dict(
            session.execute(
                select(Sbom.name, func.count(SbomPackage.id))
                .join(SbomPackage, SbomPackage.sbom_id == Sbom.id)
                .group_by(Sbom.name)
            ).all()
        )
    # Every SBOM, with its packages up to the one that ends the list early.
    assert counts == {f"d{n}": 150 if n % 5 == 4 else 300 for n in range(images)}
    engine.dispose()


def _cosign_sbom_attestation(subject: BuiltManifest, spdx: bytes) -> BuiltManifest:
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "app", "digest": {"sha256": subject.digest.split(":")[1]}}],
        "predicate": json.loads(spdx),
    }
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(b"not checked here").decode()}],
    }
    config = Blob.of(mt.OCI_CONFIG, b"{}")  # as cosign writes an attestation
    layer = Blob.of(mt.DSSE_ENVELOPE, json.dumps(envelope).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [
            {**layer.descriptor(), "annotations": {"predicateType": "https://spdx.dev/Document"}}
        ],
    }
    raw = json.dumps(manifest).encode()
    digest = Blob.of(mt.OCI_MANIFEST, raw).digest
    return BuiltManifest(mt.OCI_MANIFEST, raw, digest, len(raw), [config, layer], [], None)


async def test_an_sbom_in_an_attestation_envelope_is_prepared_ahead_with_the_same_rows(
    registry: RunningRegistry, tmp_path: Path, rng: random.Random, thread: ThreadPoolExecutor
) -> None:
    subject = build_image(rng, layers=1, layer_size=64)
    spdx = _spdx(4, 100)  # its package list ends at #50
    attestation = _cosign_sbom_attestation(subject, spdx)
    async with RegistryClient(registry.host) as client:
        await push_built(client, "enveloped/app", attestation)
        repo = RemoteRepository(client, "enveloped/app")
        manifest = await repo.get_manifest(attestation.digest)
        decoded = await decode_attachment(repo, manifest, thread)
    (layer,) = manifest.layers
    assert held_bytes(manifest) == 9 * layer.size  # the envelope and its SBOM's rows
    (ahead,) = decoded.sboms
    assert ahead.prepared is not None
    assert ahead.source == b""
    assert len(ahead.prepared.packages) == 50
    # What the writer made of the same statement before: the payload, decoded as it is stored.
    (signature,) = decoded.signatures
    assert signature.record.payload is not None
    by_writer = SbomDoc(ahead.layer_digest, signature.record.payload, wrapped=True)

    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    held = {
        "sha256:" + "a" * 64: DecodedDocuments(sboms=[ahead]),
        "sha256:" + "b" * 64: DecodedDocuments(sboms=[by_writer]),
    }
    with sessions.begin() as session:
        assert list(documents.store_all(session, held).values()) == [1, 1]
    first, second = (docs.errors for docs in held.values())
    assert first == second
    assert "packages after #50: " in first[0]
    with sessions() as session:
        rows = [
            session.execute(
                select(
                    SbomPackage.purl, SbomPackage.name, SbomPackage.version, SbomPackage.licenses
                )
                .join(Sbom, SbomPackage.sbom_id == Sbom.id)
                .where(Sbom.attachment_digest == digest)
                .order_by(SbomPackage.id)
            ).all()
            for digest in held
        ]
    assert rows[0] == rows[1]
    assert len(rows[0]) == 50
    engine.dispose()
