"""Damaged signatures get a verdict with a reason, never an exception, and never a false pass."""

from __future__ import annotations

import random

import pytest

from catalog.trust.roots import TrustConfig
from tests.formats.fixtures import CosignLayer
from tests.trust.verify_support import (
    cosign_layer,
    legacy_keys,
    linuxera_pki,
    manifest_digest,
    production,
    verify_cosign,
)

CASES = [
    "dir-img-cosign-fulcio-rekor-valid",
    "dir-img-cosign-key-rekor-valid",
    "dir-img-cosign-pki-valid",
]
ROUNDS = 150


def damage(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.4:
            out[at] = rng.randrange(32, 127)
        elif roll < 0.7:
            del out[at : at + rng.randint(1, 20)]
        else:
            out[at:at] = bytes(rng.randrange(32, 127) for _ in range(rng.randint(1, 5)))
    return bytes(out)


@pytest.fixture(scope="module")
def trust() -> TrustConfig:
    return production(keys=legacy_keys(), pki=(linuxera_pki(),))


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_payload_never_verifies(case: str, trust: TrustConfig) -> None:
    rng = random.Random(case)
    layer, subject = cosign_layer(case), manifest_digest(case)
    for _ in range(ROUNDS):
        payload = damage(layer.payload, rng)
        result = verify_cosign(
            CosignLayer(layer.media_type, payload, layer.annotations), subject, trust
        )
        assert result.verified == (payload == layer.payload), result.reason
        assert result.reason


@pytest.mark.parametrize("case", CASES)
def test_damaged_annotations_give_a_verdict(case: str, trust: TrustConfig) -> None:
    rng = random.Random(case + "annotations")
    layer, subject = cosign_layer(case), manifest_digest(case)
    for _ in range(ROUNDS):
        key = rng.choice(sorted(layer.annotations))
        damaged = damage(layer.annotations[key].encode(), rng).decode()
        result = verify_cosign(
            CosignLayer(layer.media_type, layer.payload, {**layer.annotations, key: damaged}),
            subject,
            trust,
        )
        assert result.reason
