"""Who may ask, and bodies that are not reviews: refused with one line, never a traceback, and
never a decision."""

from __future__ import annotations

import json

import pytest

from tests.admission.conftest import VIEWER_TOKEN, ServeFactory, Webhook
from tests.admission.reviews import pod_spec, review, workload


def pod(webhook: Webhook, images: list[str] | None = None) -> dict[str, object]:
    return review(workload("Pod", "p", "shop", pod_spec(images or [webhook.image("signed")])))


async def test_callers_need_credentials_and_the_gate_role(webhook: Webhook) -> None:
    status, text = await webhook.post(pod(webhook), token=None)
    assert status == 401
    status, text = await webhook.post(pod(webhook), token="not-a-token")
    assert status == 401
    assert "not-a-token" not in text
    status, text = await webhook.post(pod(webhook), "/admission/mutate", token=VIEWER_TOKEN)
    assert status == 403
    assert text == "token:viewer may not call POST /admission/mutate\n"
    status, _ = await webhook.post(pod(webhook), "/admission/other")
    assert status == 404


async def test_anonymous_callers_only_with_the_explicit_switch(serve: ServeFactory) -> None:
    webhook: Webhook = await serve(allow_anonymous=True)
    status, answer = await webhook.post(pod(webhook), token=None)
    assert status == 200
    assert answer["response"]["allowed"] is True


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{", "the body is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is not JSON"),
        (json.dumps({"a": [[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]}).encode(), "expected an"),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}),
            "expected an AdmissionReview of apiVersion admission.k8s.io/v1",
        ),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            "request must be an object",
        ),
        (
            json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"uid": 7, "kind": {"kind": "Pod"}, "operation": "CREATE"},
                }
            ),
            "request.uid must be a non-empty string",
        ),
    ],
)
async def test_bodies_that_are_not_reviews_are_refused_in_one_line(
    webhook: Webhook, body: bytes | str, error: str
) -> None:
    data = body.encode() if isinstance(body, str) else body
    status, text = await webhook.post(data)
    assert status == 400
    assert text.startswith(error)
    assert text.count("\n") == 1


async def test_too_many_containers_and_bad_images_are_refused(webhook: Webhook) -> None:
    many = pod(webhook, [webhook.image("signed")] * 101)
    status, text = await webhook.post(many)
    assert (status, text) == (400, "the object has more than 100 containers\n")

    bad = pod(webhook)
    bad["request"]["object"]["spec"]["containers"][0]["image"] = {"not": "a string"}  # type: ignore[index]
    status, text = await webhook.post(bad)
    assert status == 400
    assert text == (
        "/spec/containers/0/image must be an image reference of at most 1024 characters\n"
    )


async def test_a_body_over_the_cap_a_wrong_type_and_a_bad_timeout(serve: ServeFactory) -> None:
    webhook: Webhook = await serve(max_body_bytes=4096)
    body = pod(webhook)
    body["request"]["object"]["metadata"]["annotations"] = {"x": "y" * 5000}  # type: ignore[index]
    status, _ = await webhook.post(body)
    assert status == 413
    status, text = await webhook.post(pod(webhook), budget="forever")
    assert (status, text) == (400, "bad timeout 'forever': expected a duration such as 10s\n")


async def test_an_unparsable_image_is_denied_by_name(webhook: Webhook) -> None:
    status, answer = await webhook.post(pod(webhook, ["UPPER/Case:??"]))
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        "xregistry denied image of Pod/p: UPPER/Case:?? (containers[c0]): not an image reference"
    )
