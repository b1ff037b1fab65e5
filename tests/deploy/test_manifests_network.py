"""The NetworkPolicies as rendered: deny by default, then exactly the traffic docs/deploy.md
lists (API clients → 50051, the kube-apiserver → 8443, Prometheus → 9102; DNS, PostgreSQL and
HTTPS out)."""

from __future__ import annotations

from typing import Any

from tests.deploy.conftest import Object, Rendered, pod_specs, server


def _selects(policy: Object, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors here"
    return bool(selector.get("matchLabels", {}).items() <= labels.items())


def _pod_labels(rendered: Rendered) -> list[tuple[str, dict[str, str]]]:
    labelled = []
    for obj in rendered.objects:
        if any(
            f"{obj['kind']}/{obj['metadata']['name']}" == where for where, _ in pod_specs(rendered)
        ):
            labelled.append(
                (obj["metadata"]["name"], obj["spec"]["template"]["metadata"]["labels"])
            )
    return labelled


def test_the_namespace_denies_everything_by_default(rendered: Rendered) -> None:
    namespace = server(rendered)["metadata"]["namespace"]
    deny = [
        p
        for p in rendered.all("NetworkPolicy")
        if p["spec"]["podSelector"] == {} and p["metadata"]["namespace"] == namespace
    ]
    assert len(deny) == 1, rendered.layer
    spec = deny[0]["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in spec
    assert "egress" not in spec
    # Every policy lives in that namespace: the deny covers every pod the manifests run.
    assert {p["metadata"]["namespace"] for p in rendered.all("NetworkPolicy")} == {namespace}
    assert all(o["metadata"].get("namespace") in (None, namespace) for o in rendered.objects)


def _allowed(rendered: Rendered, labels: dict[str, str], direction: str) -> list[Object]:
    return [
        rule
        for policy in rendered.all("NetworkPolicy")
        if _selects(policy, labels)
        for rule in policy["spec"].get(direction, [])
    ]


def _ports(rule: Object) -> set[tuple[str, int]]:
    assert rule.get("ports"), "every rule names its ports"
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def test_each_port_is_open_to_its_callers_only(rendered: Rendered) -> None:
    labels = server(rendered)["spec"]["template"]["metadata"]["labels"]
    ingress: dict[int, list[Any]] = {}
    for rule in _allowed(rendered, labels, "ingress"):
        for _, port in _ports(rule):
            ingress.setdefault(port, []).extend(rule["from"])
    assert set(ingress) == {50051, 8443, 9102}, "the health port stays closed (kubelet only)"
    assert ingress[50051] == [
        {"namespaceSelector": {"matchLabels": {"xregistry.dev/api-client": "true"}}}
    ]
    # The API server has no pod labels: an address block, to narrow per cluster.
    assert all("ipBlock" in peer for peer in ingress[8443])
    assert ingress[9102] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


def test_the_server_reaches_dns_postgres_https_and_the_kubernetes_api_only(
    rendered: Rendered,
) -> None:
    labels = server(rendered)["spec"]["template"]["metadata"]["labels"]
    out: set[tuple[str, int]] = set()
    for rule in _allowed(rendered, labels, "egress"):
        ports = _ports(rule)
        if 53 in {port for _, port in ports}:
            assert rule["to"] == [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ]
        out |= ports
    assert out == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443), ("TCP", 6443)}


def test_other_pods_take_connections_from_the_server_only(rendered: Rendered) -> None:
    server_labels = server(rendered)["spec"]["template"]["metadata"]["labels"]
    for name, labels in _pod_labels(rendered):
        if name == "xregistry":
            continue
        rules = _allowed(rendered, labels, "ingress")
        assert rules, f"{name}: unreachable (then why run it?)"
        for rule in rules:
            assert rule["from"] == [{"podSelector": {"matchLabels": server_labels}}], name
        assert _allowed(rendered, labels, "egress") == [], f"{name}: calls nothing"
