"""Stored rules inside ``serve``: runs started by index events, copies gated by a policy, lag,
and task failures kept with their reasons."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from catalog.app.config import RegistryConfig, ReplicationSettings, ServeConfig
from catalog.daemon import Server
from catalog.oci.client import RegistryClient
from catalog.trust.policy.stored import Policies
from replication.service import RunView
from replication.spec import RuleSpec
from tests.harness.images import build_image
from tests.replication.api_support import Registries
from tests.replication.conftest import Pair, digest_of, push_to
from tests.signing import key_policy, push_signature, signature_tag


async def finished(service: Server, run_id: int, seconds: float = 60) -> RunView:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = service.replication.get_run(run_id)
        if view.finished:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def config(tmp_path: Path, source: str, destination: str, **rule: object) -> ServeConfig:
    return ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[
            RegistryConfig(name="src", host=source, insecure=True),
            RegistryConfig(name="dst", host=destination, insecure=True),
        ],
        replication=ReplicationSettings(
            poll="1s",
            rules=[RuleSpec.model_validate({"source": "src", "destination": "dst", **rule})],
        ),
    )


async def test_index_events_start_runs_that_copy_only_what_the_policy_allows(
    registries: Registries, tmp_path: Path, rng: random.Random
) -> None:
    source, destination = registries.source, registries.destination
    key = ec.generate_private_key(ec.SECP256R1())
    signed, unsigned = build_image(rng, layers=1), build_image(rng, layers=1)
    await push_to(source.host, "shop/api", signed, "1.0")
    await push_to(source.host, "shop/api", unsigned, "2.0")
    async with RegistryClient(source.host) as client:
        await push_signature(client, "shop/api", signed.digest, key)
    service = Server(
        config(tmp_path, source.host, destination.host, name="gated", prefix="m", policy="prod")
    )
    service.replication.put_rule(
        RuleSpec(name="follow", source="src", destination="dst", prefix="f", on_index=True)
    )
    Policies(service.sessions, service.gate.pki_names).apply("prod", key_policy(source.host, key))
    await service.start()
    try:
        never = service.replication.get_rule("follow").lag
        assert never.synced_at is None
        assert never.pending_since is not None  # never run: behind since it was made

        await service.index("src")  # new tags: the rule that follows index events runs
        (followed,) = service.replication.list_runs("follow").items
        assert followed.trigger == "index"
        assert (await finished(service, followed.id)).outcomes == {"copied": 2}
        assert service.replication.get_rule("follow").lag.in_sync
        await service.index("src")  # nothing moved: no new run
        assert len(service.replication.list_runs("follow").items) == 1

        run = service.replication.trigger_run("gated")
        assert run is not None
        done = await finished(service, run.id)
        assert done.status == "succeeded"  # a denial is the rule at work, not a failure
        assert done.outcomes == {"copied": 1, "denied": 1}
        (denied,) = done.failures
        assert (denied.tag, denied.status) == ("2.0", "denied")
        assert "policy prod denies it" in denied.reason
        assert await digest_of(destination.host, "m/shop/api", "1.0") == signed.digest
        assert await digest_of(destination.host, "m/shop/api", "2.0") is None
        # the signature travelled with the image it signs
        sig_tag = signature_tag(signed.digest)
        assert await digest_of(destination.host, "m/shop/api", sig_tag) is not None

        # A change on the source that no run has copied yet: the rule is behind since then.
        await push_to(source.host, "shop/api", build_image(rng, layers=1), "3.0")
        await service.catalog.index("src")
        lag = service.replication.get_rule("gated").lag
        assert lag.pending_changes == 1
        assert lag.pending_since is not None
        assert lag.synced_at is not None
        assert lag.pending_since > lag.synced_at
        assert lag.seconds > 0
    finally:
        await service.stop()


async def test_a_corrupted_blob_fails_its_task_with_the_reason_kept(
    pair: Pair, tmp_path: Path, rng: random.Random
) -> None:
    bad, good = build_image(rng, layers=1), build_image(rng, layers=1)
    await push_to(pair.source.host, "app", bad, "bad")
    await push_to(pair.source.host, "app", good, "good")
    pair.source_proxy.corrupt(5, match=f"/blobs/{bad.layers[0].digest}$", method="GET")
    service = Server(
        config(tmp_path, pair.source_proxy.host, pair.destination_proxy.host, name="mirror")
    )
    await service.start()
    try:
        run = service.replication.trigger_run("mirror")
        assert run is not None
        done = await finished(service, run.id)
    finally:
        await service.stop()
    assert done.status == "failed"
    assert done.outcomes == {"copied": 1, "failed": 1}
    (failure,) = done.failures
    assert failure.tag == "bad"
    assert "digest mismatch" in failure.reason
    assert done.counters["blobs_failed"] == 1
    assert await digest_of(pair.destination.host, "app", "bad") is None
    hex_digest = bad.layers[0].digest.split(":")[1]
    uploads = [e for e in pair.destination_proxy.events if e.method == "PUT" and e.query]
    assert uploads  # the good image's blobs went up ...
    assert not [e for e in uploads if hex_digest in e.query]  # ... the corrupted one never
