"""One meaning of the copy counters, from the copier to the task columns: a blob is copied,
skipped or failed once; a mounted blob is a skipped one (``blobs_mounted`` is part of
``blobs_skipped``), and ``bytes_*`` follow the blobs."""

from __future__ import annotations

import random
from pathlib import Path

from sqlalchemy import inspect

from catalog.oci.client import RegistryClient
from catalog.oci.copy import COUNTERS, Copier, CopyLedger, CopyStats
from catalog.oci.repository import RemoteRepository
from replication.models import TASK_COUNTERS, ReplicationTask
from replication.service import ReplicationService
from replication.spec import RuleSpec
from replication.worker import Worker
from tests.harness.images import BuiltManifest, build_image, random_layer
from tests.replication.api_support import Registries, catalog_db
from tests.replication.conftest import Pair, push_to
from tests.replication.serving import tasks


def _sizes(image: BuiltManifest) -> int:
    return sum(blob.size for blob in image.blobs)


async def _two_images(pair: Pair, rng: random.Random) -> tuple[BuiltManifest, BuiltManifest]:
    """Two images (a config and two layers each) sharing their first layer, in team/a and
    team/b at the source."""
    base = random_layer(rng, 20_000)
    a = build_image(rng, layers=1, base=base, layer_size=10_000)
    b = build_image(rng, layers=1, base=base, layer_size=10_000)
    await push_to(pair.source.host, "team/a", a, "1")
    await push_to(pair.source.host, "team/b", b, "1")
    return a, b


async def test_copied_mounted_and_skipped_blobs_in_the_copiers_counters(
    pair: Pair, rng: random.Random
) -> None:
    a, b = await _two_images(pair, rng)
    base = a.blobs[1]
    async with (
        RegistryClient(pair.source.host) as src,
        RegistryClient(pair.destination.host) as dst,
    ):

        async def copy(repository: str, ledger: CopyLedger) -> CopyStats:
            stats = CopyStats()
            source = RemoteRepository(src, repository)
            copier = Copier(source, RemoteRepository(dst, repository), stats=stats, ledger=ledger)
            await copier.copy(await source.get_manifest("1"), "1")
            return stats

        session = CopyLedger()
        first = await copy("team/a", session)
        mounted = await copy("team/b", session)  # the shared layer landed in team/a: mounted
        again = await copy("team/a", session)  # landed earlier in this session
        present = await copy("team/b", CopyLedger())  # a new session: the registry has it all

    assert first == CopyStats(manifests_copied=1, blobs_copied=3, bytes_copied=_sizes(a))
    assert mounted == CopyStats(
        manifests_copied=1,
        blobs_copied=2,
        blobs_skipped=1,
        blobs_mounted=1,
        bytes_copied=_sizes(b) - base.size,
        bytes_skipped=base.size,
    )
    assert again == CopyStats(manifests_skipped=1)  # the manifest's blobs were not looked at
    assert present == CopyStats(manifests_copied=1, blobs_skipped=3, bytes_skipped=_sizes(b))


async def test_task_columns_and_run_counters_mean_the_same(
    pair: Pair, rng: random.Random, tmp_path: Path
) -> None:
    a, b = await _two_images(pair, rng)
    base = a.blobs[1]
    sessions = catalog_db(
        f"sqlite:///{tmp_path / 'catalog.db'}", Registries(pair.source, pair.destination)
    )
    service = ReplicationService(sessions)
    service.put_rule(RuleSpec(name="m", source="src", destination="dst"))
    run = service.trigger_run("m")
    assert run is not None
    await Worker(sessions).finish(run.id)

    rows = tasks(sessions, run.id)
    assert sorted(row.status for row in rows) == ["copied", "copied"]
    for row in rows:  # every blob of the image once, whichever of the two mounted the layer
        assert row.blobs_copied + row.blobs_skipped + row.blobs_failed == 3
        assert row.blobs_mounted == row.blobs_skipped
    counters = service.get_run(run.id).counters
    assert {name: counters[name] for name in COUNTERS} == {
        **CopyStats().as_dict(),
        "manifests_copied": 2,
        "blobs_copied": 5,
        "blobs_skipped": 1,
        "blobs_mounted": 1,
        "bytes_copied": _sizes(a) + _sizes(b) - base.size,
        "bytes_skipped": base.size,
    }


def test_every_counter_is_a_task_column() -> None:
    columns = {column.key for column in inspect(ReplicationTask).columns}
    assert set(TASK_COUNTERS) <= columns
