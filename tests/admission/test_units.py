"""The pieces on their own: JSON pointers, pins, timeouts, bounded messages, namespace
selectors in the policy format."""

from __future__ import annotations

import pytest

from catalog.admission import pinned
from catalog.admission.images import escape, pointer
from catalog.admission.review import ReviewError, bounded
from catalog.api.admission import request_timeout
from catalog.trust.policy import ImageFacts, Namespace, PolicyError, evaluate, load_policy_set

DIGEST = "sha256:" + "a" * 64


def test_json_pointer_tokens_are_escaped() -> None:
    assert escape("a/b~c") == "a~1b~0c"
    assert escape("~1") == "~01"  # ~ first, so an escaped / is not unescaped twice
    assert pointer(("spec", "containers", 0, "image")) == "/spec/containers/0/image"
    assert pointer(("metadata", "annotations", "acme.io/pin~x")) == (
        "/metadata/annotations/acme.io~1pin~0x"
    )


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("registry.acme.io/shop/api:1.4", f"registry.acme.io/shop/api:1.4@{DIGEST}"),
        ("nginx", f"nginx:latest@{DIGEST}"),
        ("localhost:5000/a/b", f"localhost:5000/a/b:latest@{DIGEST}"),
        (f"registry.acme.io/shop/api@{DIGEST}", None),
        (f"registry.acme.io/shop/api:1.4@{DIGEST}", None),
    ],
)
def test_pins_keep_the_tag_and_leave_pinned_images_alone(image: str, expected: str | None) -> None:
    assert pinned(image, DIGEST) == expected
    assert pinned(image, "") is None  # nothing judged: nothing to pin


@pytest.mark.parametrize(
    ("query", "seconds"),
    [({}, None), ({"timeout": "10s"}, 10.0), ({"timeout": "500ms"}, 0.5), ({"timeout": "1m"}, 60)],
)
def test_the_api_servers_timeout_parameter(query: dict[str, str], seconds: float | None) -> None:
    assert request_timeout(query) == seconds


@pytest.mark.parametrize("text", ["", "10", "-1s", "1h", "1e9s", "10s; drop"])
def test_bad_timeouts_are_refused(text: str) -> None:
    with pytest.raises(ReviewError):
        request_timeout({"timeout": text})


def test_messages_are_bounded_each_and_in_total() -> None:
    kept = bounded(["x" * 300, "y" * 10, "z" * 4000], 256, 4096)
    assert [len(line) for line in kept] == [256, 10, 256]
    assert kept[0].endswith("…")
    assert len(bounded(["w" * 200] * 100, 256, 4096)) == 20


POLICY = """\
noMatch: allow
policies:
  - name: prod
    images: ["**"]
    namespaces: {names: ["prod-*", "payments"], matchLabels: {env: prod}}
    requireSbom: true
"""


def test_policies_select_namespaces() -> None:
    policies = load_policy_set(POLICY)
    facts = ImageFacts(DIGEST, "registry.acme.io/a:1")

    def allowed(namespace: Namespace | None) -> bool:
        return evaluate(policies, facts, namespace=namespace).allowed

    assert not allowed(None)  # outside Kubernetes every policy applies
    assert not allowed(Namespace("prod-eu", {"env": "prod"}))
    assert not allowed(Namespace("payments", None))  # labels unknown: the selector matches
    assert allowed(Namespace("prod-eu", {"env": "dev"}))
    assert allowed(Namespace("dev", {"env": "prod"}))
    assert allowed(Namespace("prod", {"env": "prod"}))  # "prod-*" needs the dash
    assert policies.selection(None) == ()
    assert policies.selection(Namespace("dev")) == (False,)


def test_a_policy_without_namespaces_keeps_its_digest() -> None:
    plain = load_policy_set("name: a\nimages: ['**']\n")
    assert "namespaces" not in plain.canonical


@pytest.mark.parametrize(
    ("namespaces", "error"),
    [
        ("{}", "give names, matchLabels or both"),
        ("{names: []}", "at least 1 item"),
        ("{names: ['Prod']}", "bad namespace glob 'Prod'"),
        ("{names: ['a/b']}", "bad namespace glob"),
        ("{matchLabels: {'bad key!': x}}", "bad label key"),
        ("{matchLabels: {env: 'a b'}}", "bad label value"),
        ("{labels: {env: prod}}", "labels"),
    ],
)
def test_bad_namespace_selectors_are_refused(namespaces: str, error: str) -> None:
    with pytest.raises(PolicyError, match=error):
        load_policy_set(f"name: a\nimages: ['**']\nnamespaces: {namespaces}\n")
