"""The webhook over HTTPS on a real server, judging images of a real registry: every kind,
signed, unsigned, tag-only, digest-pinned and mixed; pins applied with a JSON-Patch library."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from catalog.oci.client import RegistryClient
from catalog.principals import SERVER, acting_as
from catalog.store.models import DecisionRecord
from tests.admission.conftest import Webhook, patched, policy_source
from tests.admission.reviews import (
    KINDS,
    fixture,
    images_of,
    pod_spec,
    review,
    spec_of,
    workload,
)
from tests.signing import push_signature


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_every_kind_is_judged_and_pinned(webhook: Webhook, kind: str) -> None:
    restart = "OnFailure" if kind in ("Job", "CronJob") else "Always"
    signed, unsigned = webhook.image("signed"), webhook.image("unsigned")
    pinned_already = webhook.pinned("signed2")
    allowed_obj = workload(
        kind, "web", "shop", pod_spec([signed, pinned_already], init=(signed,), restart=restart)
    )
    answer = await webhook.answer(review(allowed_obj))
    assert answer["allowed"] is True, answer
    assert "status" not in answer

    mutation = await webhook.answer(review(allowed_obj), "/admission/mutate")
    assert mutation["allowed"] is True
    after = patched(allowed_obj, mutation)
    digest = webhook.digests["signed"]
    assert images_of(after) == [f"{signed}@{digest}", f"{signed}@{digest}", pinned_already]
    assert spec_of(after)["containers"][0]["name"] == "c0"  # nothing else moved
    # What runs is what was checked: the pinned object is allowed too, without live work.
    assert (await webhook.answer(review(after)))["allowed"] is True

    denied_obj = workload(kind, "api", "shop", pod_spec([signed, unsigned], restart=restart))
    denied = await webhook.answer(review(denied_obj))
    assert denied["allowed"] is False
    message = denied["status"]["message"]
    assert denied["status"]["code"] == 403
    assert f"{unsigned} (containers[c1])" in message
    assert "release-key" in message
    assert f"{kind}/api" in message
    assert signed + " " not in message  # only the denied image is named
    assert len(message) <= 1024
    assert denied["auditAnnotations"]["denied"] == unsigned


async def test_the_api_servers_pod_request_with_init_containers(webhook: Webhook) -> None:
    body = fixture(
        "pod-create.json", image=webhook.image("signed"), init_image=webhook.image("unsigned")
    )
    answer = await webhook.answer(body)
    assert answer["allowed"] is False
    assert "initContainers[migrate]" in answer["status"]["message"]

    mutation = await webhook.answer(body, "/admission/mutate")
    after = patched(body["request"]["object"], mutation)
    assert after["spec"]["containers"][0]["image"].endswith("@" + webhook.digests["signed"])
    assert after["spec"]["initContainers"][0]["image"].endswith("@" + webhook.digests["unsigned"])
    assert after["spec"]["volumes"] == body["request"]["object"]["spec"]["volumes"]


async def test_ephemeral_containers_subresource_judges_and_pins_only_them(
    webhook: Webhook,
) -> None:
    body = fixture(
        "pod-ephemeralcontainers.json",
        image=webhook.image("unsigned"),  # already running: not this request's to judge
        debug_image=webhook.image("signed"),
    )
    answer = await webhook.answer(body)
    assert answer["allowed"] is True, answer
    mutation = await webhook.answer(body, "/admission/mutate")
    after = patched(body["request"]["object"], mutation)
    assert after["spec"]["containers"][0]["image"] == webhook.image("unsigned")
    debug = after["spec"]["ephemeralContainers"][0]["image"]
    assert debug == f"{webhook.image('signed')}@{webhook.digests['signed']}"

    body = fixture(
        "pod-ephemeralcontainers.json",
        image=webhook.image("signed"),
        debug_image=webhook.image("unsigned"),
    )
    answer = await webhook.answer(body)
    assert answer["allowed"] is False
    assert "ephemeralContainers[debugger-7xk2p]" in answer["status"]["message"]


async def test_digest_pinned_unsigned_is_denied_and_not_patched(webhook: Webhook) -> None:
    unsigned = webhook.pinned("unsigned")
    obj = workload("Pod", "p", "shop", pod_spec([unsigned]))
    assert (await webhook.answer(review(obj)))["allowed"] is False
    mutation = await webhook.answer(review(obj), "/admission/mutate")
    assert "patch" not in mutation
    assert mutation["allowed"] is True  # mutation never denies; validation does


async def test_images_no_policy_covers_are_allowed_with_a_warning(webhook: Webhook) -> None:
    debug = webhook.image("1", "tools/debug")
    obj = workload("Deployment", "tools", "shop", pod_spec([debug]))
    answer = await webhook.answer(review(obj))
    assert answer["allowed"] is True
    assert answer["warnings"] == [
        f"{debug} (containers[c0]): no policy applies to {debug} (noMatch: allow)"
    ]


async def test_warn_mode_allows_with_warnings(webhook: Webhook) -> None:
    from tests.admission.conftest import policy_source

    webhook.apply(policy_source(webhook.host, webhook.key, mode="warn"))
    unsigned = webhook.image("unsigned")
    obj = workload("Deployment", "web", "shop", pod_spec([unsigned, webhook.image("signed")]))
    answer = await webhook.answer(review(obj))
    assert answer["allowed"] is True
    [warning] = answer["warnings"]
    assert warning.startswith(f"{unsigned} (containers[c0]): no verified signature")
    assert len(warning) <= 256


async def test_dry_run_is_decided_and_recorded_as_such(webhook: Webhook) -> None:
    obj = workload("Deployment", "web", "shop", pod_spec([webhook.image("unsigned")]))
    body = review(obj, dry_run=True, user="alice@acme.io")
    answer = await webhook.answer(body)
    assert answer["allowed"] is False
    assert answer["auditAnnotations"]["dryRun"] == "decided, recorded as a dry run"
    await webhook.server.gate.audit.stop()  # written now
    with webhook.server.sessions() as session:
        rows = session.scalars(
            select(DecisionRecord).where(DecisionRecord.object_ref == "Deployment/web")
        ).all()
    assert [
        (r.namespace, r.operation, r.requester, r.dry_run, r.allowed, r.principal) for r in rows
    ] == [("shop", "CREATE", "alice@acme.io", True, False, "token:kube-apiserver")]
    assert rows[0].reference == webhook.image("unsigned")


async def test_warm_answers_follow_a_policy_change_and_a_new_signature(webhook: Webhook) -> None:
    """A warm review reuses what it made of the gate's cached decision: a new policy version,
    then a newly indexed signature, must each change the answer at the next review."""
    pod = workload("Pod", "web", "shop", pod_spec([webhook.image("signed")]))
    for _ in range(3):  # the first decides, the others are answered warm
        assert (await webhook.answer(review(pod)))["allowed"] is True

    other_key = ec.generate_private_key(ec.SECP256R1())
    webhook.apply(policy_source(webhook.host, other_key))  # only another key is trusted now
    for _ in range(2):
        denied = await webhook.answer(review(pod))
        assert denied["allowed"] is False, denied
        assert webhook.image("signed") in denied["status"]["message"]

    async with RegistryClient(webhook.host) as client:
        await push_signature(client, "shop/app", webhook.digests["signed"], other_key)
    with acting_as(SERVER):
        await webhook.server.catalog.index("local")
    for _ in range(2):
        assert (await webhook.answer(review(pod)))["allowed"] is True


async def test_a_warm_reviews_decisions_are_logged_together_or_refused_together(
    webhook: Webhook,
) -> None:
    """A warm review queues its images' rows in one call (one time, one principal); when they
    do not all fit in the log, every image is denied saying why and none is recorded."""
    images = [webhook.image("signed"), webhook.image("unsigned"), webhook.image("signed2")]
    pod = workload("Pod", "log", "shop", pod_spec(images))
    await webhook.answer(review(pod))  # decided, then cached
    audit = webhook.server.gate.audit
    assert await _written(webhook)
    assert (await webhook.answer(review(pod)))["allowed"] is False  # warm: unsigned is denied
    assert await _written(webhook)
    with webhook.server.sessions() as session:
        rows = session.scalars(
            select(DecisionRecord)
            .where(DecisionRecord.object_ref == "Pod/log")
            .order_by(DecisionRecord.id)
        ).all()
    warm = rows[len(images) :]
    assert [(r.reference, r.cached) for r in warm] == [(image, True) for image in images]
    assert len({(r.decided_at, r.principal) for r in warm}) == 1
    assert warm[0].principal == "token:kube-apiserver"

    audit.capacity = len(images) - 1
    refused = await webhook.answer(review(pod))
    assert refused["allowed"] is False
    assert refused["status"]["message"].count("the decision log cannot be written") == len(images)
    assert audit.waiting == 0
    with webhook.server.sessions() as session:
        count = session.scalar(
            select(func.count(DecisionRecord.id)).where(DecisionRecord.object_ref == "Pod/log")
        )
    assert count == len(rows)


async def _written(webhook: Webhook) -> bool:
    for _ in range(100):
        if not webhook.server.gate.audit.waiting:
            return True
        await asyncio.sleep(0.05)
    return False
