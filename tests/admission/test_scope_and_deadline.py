"""Namespace scoping (name globs, labels from a Kubernetes API, exemptions), the review's
deadline against a registry that never answers, and catalog-first answers."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from catalog.app.admission_config import NamespaceLabels
from catalog.principals import SERVER, acting_as
from catalog.store.models import DecisionRecord
from catalog.store.registries import RegistrySpec
from tests.admission.conftest import ServeFactory, Webhook, policy_source
from tests.admission.reviews import pod_spec, review, workload
from tests.harness.pki import make_ca, make_server_cert
from tests.harness.registry import RunningRegistry
from tests.hostile.registry_fakes import Request, send
from tests.hostile.registry_fakes import serve as serve_fake


async def test_policies_select_namespaces_by_name(webhook: Webhook) -> None:
    webhook.apply(
        policy_source(webhook.host, webhook.key, namespaces='namespaces: {names: ["prod-*"]}\n')
    )
    unsigned = webhook.image("unsigned")
    for namespace, allowed in (("prod-eu", False), ("dev", True), ("production", True)):
        obj = workload("Deployment", "web", namespace, pod_spec([unsigned]))
        answer = await webhook.answer(review(obj))
        assert answer["allowed"] is allowed, (namespace, answer)


async def test_exempt_namespaces_and_images_are_not_judged(serve: ServeFactory) -> None:
    webhook: Webhook = await serve(
        exempt_namespaces=["kube-system"], exempt_images=["*/shop/app:unsigned"]
    )
    host = webhook.host
    obj = workload("DaemonSet", "cni", "kube-system", pod_spec([webhook.image("unsigned")]))
    answer = await webhook.answer(review(obj))
    assert answer == {
        "uid": answer["uid"],
        "allowed": True,
        "auditAnnotations": {"exempt": "namespace kube-system"},
    }
    # The glob's host part is a pattern: it covers this registry's shop/app:unsigned only.
    obj = workload("Pod", "p", "shop", pod_spec([f"{host}/shop/app:unsigned"]))
    answer = await webhook.answer(review(obj))
    assert answer["allowed"] is True
    assert answer["auditAnnotations"]["exempt"] == "1"
    mutation = await webhook.answer(review(obj), "/admission/mutate")
    assert "patch" not in mutation  # an exempt image is not resolved, so not pinned


@pytest.fixture
async def kubernetes_api(tmp_path: Path) -> AsyncIterator[tuple[NamespaceLabels, list[str]]]:
    """A stand-in for the Kubernetes API's ``GET /api/v1/namespaces/{name}`` over TLS (a
    kube-apiserver cannot run here), checking the service-account token."""
    ca = make_ca(tmp_path / "kube-ca")
    server = make_server_cert(tmp_path / "kube-server", ca)
    token = tmp_path / "token"
    token.write_text("service-account-token\n")
    labels = {"prod": {"env": "prod", "kubernetes.io/metadata.name": "prod"}, "dev": {}}
    asked: list[str] = []

    async def namespace(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer service-account-token":
            return web.Response(status=401)
        name = request.match_info["name"]
        asked.append(name)
        if name == "deep":  # a hostile answer: nested 10,000 deep
            nested = b"[" * 10_000 + b"]" * 10_000
            return web.Response(
                body=b'{"metadata": ' + nested + b"}", content_type="application/json"
            )
        if name not in labels:
            return web.Response(status=404)
        body = {"kind": "Namespace", "metadata": {"name": name, "labels": labels[name]}}
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{name}", namespace)
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.cert_file, server.key_file)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = NamespaceLabels(
        source="kubernetes",
        api_server=f"https://localhost:{port}",
        token_file=token,
        ca_file=ca.cert_file,
        cache_seconds=60,
    )
    yield settings, asked
    await runner.cleanup()


async def test_policies_select_namespaces_by_label_read_from_kubernetes(
    serve: ServeFactory, kubernetes_api: tuple[NamespaceLabels, list[str]]
) -> None:
    settings, asked = kubernetes_api
    webhook: Webhook = await serve(namespace_labels=settings)
    webhook.apply(
        policy_source(
            webhook.host, webhook.key, namespaces="namespaces: {matchLabels: {env: prod}}\n"
        )
    )
    unsigned = webhook.image("unsigned")
    for namespace, allowed in (("prod", False), ("dev", True), ("prod", False)):
        obj = workload("StatefulSet", "db", namespace, pod_spec([unsigned]))
        answer = await webhook.answer(review(obj))
        assert answer["allowed"] is allowed, (namespace, answer)
    assert asked == ["prod", "dev"]  # the second prod review read the cache
    # A namespace whose labels cannot be read does not escape the policy; nor does one whose
    # answer is nested past any stack (a review answered, not a server error).
    for namespace in ("unknown", "deep"):
        obj = workload("StatefulSet", "db", namespace, pod_spec([unsigned]))
        assert (await webhook.answer(review(obj)))["allowed"] is False


@pytest.fixture
async def blackhole() -> AsyncIterator[str]:
    """A registry address that accepts connections and never answers (a hostile peer)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for writer in held:
        writer.close()
    server.close()


@pytest.mark.timing
@pytest.mark.parametrize("failure", ["deny", "allow"])
async def test_an_unreachable_registry_is_answered_in_time_by_the_failure_mode(
    serve: ServeFactory, blackhole: str, failure: str
) -> None:
    webhook: Webhook = await serve(failure=failure, margin_seconds=0.5)
    with acting_as(SERVER):  # stored: a loopback registry the catalog does not store is not asked
        webhook.server.catalog.add_registry(RegistrySpec("stuck", blackhole))
    source = policy_source(webhook.host, webhook.key).replace(
        f'images: ["{webhook.host}/shop/**"]',
        f'images: ["{webhook.host}/shop/**", "{blackhole}/**"]',
    )
    webhook.apply(source)
    stuck = f"{blackhole}/shop/app:1.0"
    obj = workload("Deployment", "web", "shop", pod_spec([stuck, webhook.image("signed")]))
    started = time.monotonic()
    status, answer = await webhook.post(review(obj), budget="2s")
    took = time.monotonic() - started
    assert status == 200, answer
    assert took < 2.0, took  # before the API server's own deadline
    response = answer["response"]
    if failure == "deny":
        assert response["allowed"] is False
        assert (
            f"{stuck} (containers[c0]): could not verify in time" in response["status"]["message"]
        )
    else:
        assert response["allowed"] is True
        [warning] = response["warnings"]
        assert warning.startswith(f"{stuck} (containers[c0]): could not verify in time")
        assert warning.endswith("; allowed by failure mode allow")


@pytest.mark.timing
@pytest.mark.parametrize("failure", ["deny", "allow"])
async def test_a_catalog_that_does_not_answer_is_answered_in_time_by_the_failure_mode(
    serve: ServeFactory, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog's database stalls (locked, failing over): the review is answered before
    the API server's deadline, as the failure mode says, not left to hang."""
    webhook: Webhook = await serve(failure=failure, margin_seconds=0.5)
    gate = webhook.server.gate
    read = gate.states
    stalled = threading.Event()

    def stalls(*args: Any, **kwargs: Any) -> Any:
        stalled.wait(5)  # the read's thread waits, as it would for a lock
        return read(*args, **kwargs)

    monkeypatch.setattr(gate, "states", stalls)
    image = webhook.image("signed")  # never judged yet: its state is read from the catalog
    obj = workload("Deployment", "web", "shop", pod_spec([image]))
    started = time.monotonic()
    try:
        status, answer = await webhook.post(review(obj), budget="2s")
    finally:
        stalled.set()
    took = time.monotonic() - started
    assert status == 200, answer
    assert took < 2.0, took
    response = answer["response"]
    why = f"{image} (containers[c0]): could not read the catalog in time"
    if failure == "deny":
        assert response["allowed"] is False
        assert why in response["status"]["message"]
    else:
        assert response["allowed"] is True
        assert response["warnings"][0].startswith(why)


async def test_cached_decisions_and_evidence_free_policies_ask_no_registry(
    webhook: Webhook, blackhole: str, fresh_registry: RunningRegistry
) -> None:
    obj = workload("Deployment", "web", "shop", pod_spec([webhook.image("unsigned")]))
    first = await webhook.answer(review(obj))
    assert first["allowed"] is False
    # The registry gone: the cached decision still answers, at once.
    fresh_registry.stop()
    started = time.monotonic()
    again = await webhook.answer(review(obj))
    assert again == {**first, "uid": again["uid"]}
    assert time.monotonic() - started < 1.0
    # An image only noMatch: allow covers needs no evidence: a registry that never answers
    # is never asked.
    stranger = f"{blackhole}/vendor/tool:2"
    obj = workload("Pod", "p", "shop", pod_spec([stranger]))
    started = time.monotonic()
    status, answer = await webhook.post(review(obj), budget="5s")
    assert status == 200
    assert answer["response"]["allowed"] is True
    assert time.monotonic() - started < 1.0
    assert json.dumps(answer).count("could not verify") == 0


@pytest.mark.timing
async def test_a_kubernetes_api_that_never_answers_costs_its_timeout_and_fails_closed(
    serve: ServeFactory, blackhole: str, tmp_path: Path
) -> None:
    token = tmp_path / "sa-token"
    token.write_text("t")
    ca = make_ca(tmp_path / "unused-ca")
    settings = NamespaceLabels(
        source="kubernetes",
        api_server=f"https://{blackhole}",
        token_file=token,
        ca_file=ca.cert_file,
        timeout_seconds=0.5,
    )
    webhook: Webhook = await serve(namespace_labels=settings)
    webhook.apply(
        policy_source(
            webhook.host, webhook.key, namespaces="namespaces: {matchLabels: {env: prod}}\n"
        )
    )
    obj = workload("Deployment", "web", "anywhere", pod_spec([webhook.image("unsigned")]))
    started = time.monotonic()
    status, answer = await webhook.post(review(obj), budget="5s")
    assert time.monotonic() - started < 2.5
    assert status == 200
    # Labels unknown after 0.5 s: the selector matches, and the policy judges the image.
    response = answer["response"]
    assert response["allowed"] is False
    assert "no verified signature from authority release-key" in response["status"]["message"]


async def test_an_exempt_image_passes_beside_images_that_are_judged(serve: ServeFactory) -> None:
    """Only the image the glob names is exempt: the same image pinned by digest (no tag for
    the glob) is judged and denied beside it, in enforce, dry run and warn mode alike."""
    webhook: Webhook = await serve(exempt_images=["*/shop/app:unsigned"])
    exempt, judged = webhook.image("unsigned"), webhook.pinned("unsigned")
    signed = webhook.image("signed")
    obj = workload("Deployment", "mixed", "shop", pod_spec([exempt, judged, signed]))

    answer = await webhook.answer(review(obj))
    assert answer["allowed"] is False
    assert answer["auditAnnotations"] == {"images": "3", "exempt": "1", "denied": judged}
    assert answer["status"]["message"].startswith(
        f"xregistry denied image of Deployment/mixed: {judged} (containers[c1]): "
    )
    mutation = await webhook.answer(review(obj), "/admission/mutate")
    operations = json.loads(base64.b64decode(mutation["patch"]))
    assert [(o["path"], o["value"]) for o in operations] == [  # the exempt image not pinned
        ("/spec/template/spec/containers/2/image", f"{signed}@{webhook.digests['signed']}")
    ]

    dry = await webhook.answer(review(obj, dry_run=True))
    assert dry["allowed"] is False
    assert dry["auditAnnotations"]["exempt"] == "1"
    assert dry["auditAnnotations"]["dryRun"] == "decided, recorded as a dry run"
    await webhook.server.gate.audit.stop()  # written now
    with webhook.server.sessions() as session:
        recorded = session.execute(
            select(DecisionRecord.reference, DecisionRecord.dry_run).where(
                DecisionRecord.object_ref == "Deployment/mixed"
            )
        ).all()
    assert exempt not in {reference for reference, _ in recorded}  # never judged
    assert (judged, True) in recorded

    webhook.apply(policy_source(webhook.host, webhook.key, mode="warn"))
    warned = await webhook.answer(review(obj))
    assert warned["allowed"] is True
    assert warned["auditAnnotations"]["exempt"] == "1"
    [warning] = warned["warnings"]
    assert warning.startswith(f"{judged} (containers[c1]): no verified signature")


@pytest.mark.parametrize("failure", ["deny", "allow"])
async def test_an_inside_registry_the_catalog_does_not_store_is_denied_unasked(
    serve: ServeFactory, failure: str
) -> None:
    """A pod's creator names the registry: one inside (here loopback) that the catalog does not
    store is never asked, and its image is denied whatever the failure mode (a refusal, not a
    registry failing)."""

    async def record(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 404)

    webhook: Webhook = await serve(failure=failure)
    with serve_fake(record) as fake:
        source = policy_source(webhook.host, webhook.key).replace(
            f'images: ["{webhook.host}/shop/**"]',
            f'images: ["{webhook.host}/shop/**", "{fake.host}/**"]',
        )
        webhook.apply(source)
        stranger = f"{fake.host}/shop/app:1.0"
        obj = workload("Deployment", "web", "shop", pod_spec([stranger]))
        status, answer = await webhook.post(review(obj))
    assert status == 200, answer
    response = answer["response"]
    assert response["allowed"] is False
    assert (
        f"{stranger} (containers[c0]): {fake.host} is not a registry of the catalog"
        in (response["status"]["message"])
    )
    assert fake.requests == []
