"""A run's memory is bounded by its transfers, not by what its images hold: a blob is read whole
(up to the destination's buffer limit) before it is pushed, so downloads must not run ahead of
a slow destination without limit."""

from __future__ import annotations

import random

import pytest

from catalog.oci.copy import Copier
from catalog.oci.manifest import Descriptor
from replication import image
from tests.harness.images import build_image
from tests.replication.conftest import Pair, assert_mirrored, push_to


async def test_a_run_moves_a_bounded_number_of_blobs_at_once(
    pair: Pair, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image, "TRANSFERS", 3)
    for n in range(4):
        built = build_image(rng, layers=12, layer_size=4096)
        await push_to(pair.source.host, f"many/r{n}", built, "v1")
    pair.destination_proxy.latency = 0.02  # the destination takes each blob slower than sent
    moving = most = 0
    transfer = Copier._transfer

    async def counted(self: Copier, blob: Descriptor) -> None:
        nonlocal moving, most
        moving += 1
        most = max(most, moving)
        try:
            await transfer(self, blob)
        finally:
            moving -= 1

    monkeypatch.setattr(Copier, "_transfer", counted)
    report = await pair.run("m")
    assert report.errors == []
    assert report.counts.blobs_copied == 4 * 13  # each image's layers and config
    assert most == 3  # the run's bound, shared by its images (each would move all at once)
    assert await assert_mirrored(pair.source.host, pair.destination.host, "m") >= 4
