"""The admission webhook configurations (issue 13) as rendered: what they send to xregistry,
that they can reach it, that they cannot lock the cluster (or xregistry itself) out, and where
their CA comes from in each overlay."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.conftest import Object, Rendered, server, server_container, volume

WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
PATHS = {
    "MutatingWebhookConfiguration": "/admission/mutate",
    "ValidatingWebhookConfiguration": "/admission/validate",
}
# Pods and every kind with a pod template (issue 13), as group → resources.
POD_KINDS = {
    "": {"pods", "pods/ephemeralcontainers", "replicationcontrollers"},
    "apps": {"deployments", "replicasets", "statefulsets", "daemonsets"},
    "batch": {"jobs", "cronjobs"},
}
# Namespaces whose pods must start while xregistry is down.
ALWAYS_EXEMPT = {"xregistry", "kube-system"}


def _webhooks(rendered: Rendered) -> list[tuple[str, Object, Object]]:
    found = [
        (kind, config, hook)
        for kind in WEBHOOK_KINDS
        for config in rendered.all(kind)
        for hook in config["webhooks"]
    ]
    assert {kind for kind, _, _ in found} == set(WEBHOOK_KINDS), rendered.layer
    return found


def _exempt(hook: Object) -> set[str]:
    [expression] = hook["namespaceSelector"]["matchExpressions"]
    assert expression["key"] == "kubernetes.io/metadata.name"
    assert expression["operator"] == "NotIn"
    return set(expression["values"])


def test_the_webhooks_speak_v1_without_side_effects(rendered: Rendered) -> None:
    for kind, _, hook in _webhooks(rendered):
        assert hook["admissionReviewVersions"] == ["v1"], kind
        assert hook["sideEffects"] == "None", kind
        assert hook["matchPolicy"] == "Equivalent", kind
        assert hook["failurePolicy"] == "Fail", kind
        # The API server's own bounds; the server answers within the ?timeout= it is given.
        assert 1 <= hook["timeoutSeconds"] <= 30, kind
        if kind == "MutatingWebhookConfiguration":
            assert hook["reinvocationPolicy"] == "IfNeeded"


def test_the_webhooks_see_pods_and_every_pod_template_on_create_and_update(
    rendered: Rendered,
) -> None:
    for kind, _, hook in _webhooks(rendered):
        covered: dict[str, set[str]] = {}
        for rule in hook["rules"]:
            assert set(rule["operations"]) == {"CREATE", "UPDATE"}, kind
            assert rule["apiVersions"] == ["v1"], kind
            assert rule["scope"] == "Namespaced", kind
            for group in rule["apiGroups"]:
                covered.setdefault(group, set()).update(rule["resources"])
        assert covered == POD_KINDS, kind


def test_the_webhooks_spare_xregistry_and_the_system(rendered: Rendered) -> None:
    namespace = server(rendered)["metadata"]["namespace"]
    for kind, _, hook in _webhooks(rendered):
        exempt = _exempt(hook)
        assert ALWAYS_EXEMPT | {namespace} <= exempt, kind
        assert "objectSelector" not in hook, f"{kind}: a label must not opt a pod out"
    if any(o["apiVersion"].startswith("cert-manager.io/") for o in rendered.objects):
        # cert-manager renews xregistry's certificate: it must run while xregistry is down.
        assert all("cert-manager" in _exempt(hook) for _, _, hook in _webhooks(rendered))


def test_the_webhooks_reach_the_admission_listener(rendered: Rendered) -> None:
    service = rendered.one("Service", "xregistry")
    container_ports = {p["name"]: p["containerPort"] for p in server_container(rendered)["ports"]}
    for kind, _, hook in _webhooks(rendered):
        target = hook["clientConfig"]["service"]
        assert "url" not in hook["clientConfig"], kind
        assert target["name"] == service["metadata"]["name"], kind
        assert target["namespace"] == service["metadata"]["namespace"], kind
        assert target["path"] == PATHS[kind]
        [port] = [p for p in service["spec"]["ports"] if p["port"] == target["port"]]
        assert port["targetPort"] == "admission"
        assert container_ports["admission"] == 8443


def _certificates(rendered: Rendered) -> dict[str, Object]:
    return {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o
        for o in rendered.all("Certificate")
    }


def test_the_ca_comes_from_the_serving_certificate(rendered: Rendered) -> None:
    certificates = _certificates(rendered)
    for kind, config, hook in _webhooks(rendered):
        annotations = config["metadata"].get("annotations", {})
        if not certificates:
            # The base: the operator patches caBundle in (docs/deploy.md, "TLS").
            assert "cert-manager.io/inject-ca-from" not in annotations, kind
            assert "caBundle" not in hook["clientConfig"], kind
            continue
        source = certificates[annotations["cert-manager.io/inject-ca-from"]]
        assert "caBundle" not in hook["clientConfig"], f"{kind}: cainjector owns it"
        tls = volume(rendered, "tls")
        assert source["spec"]["secretName"] == tls["secret"]["secretName"], kind
        service = hook["clientConfig"]["service"]
        # The name the API server checks the serving certificate against.
        assert f"{service['name']}.{service['namespace']}.svc" in source["spec"]["dnsNames"]


def test_the_serving_certificate_chains_to_a_ca_in_the_namespace(rendered: Rendered) -> None:
    """cert-manager CRDs have no schema here: the fields the chain depends on, checked."""
    certificates = _certificates(rendered)
    if not certificates:
        pytest.skip(f"{rendered.layer}: the operator brings the certificate")
    issuers = {o["metadata"]["name"]: o for o in rendered.all("Issuer")}
    serving = certificates["xregistry/xregistry-serving"]
    assert serving["spec"]["usages"] == ["server auth", "digital signature"]
    assert serving["spec"]["privateKey"]["rotationPolicy"] == "Always"
    ca_issuer = issuers[serving["spec"]["issuerRef"]["name"]]
    assert serving["spec"]["issuerRef"]["kind"] == "Issuer"
    ca = next(
        c
        for c in certificates.values()
        if c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"]
    )
    assert ca["spec"]["isCA"] is True
    assert "selfSigned" in issuers[ca["spec"]["issuerRef"]["name"]]["spec"]
    for obj in (*certificates.values(), *issuers.values()):
        assert obj["metadata"]["namespace"] == "xregistry"


# cert-manager.io/v1 has no schema in kubernetes-validate, and cert-manager's CRDs are not
# vendored: the subset of its fields these manifests use, so a misspelt one fails here rather
# than be dropped by the API server's pruning.
_CERTIFICATE_SPEC = {
    "secretName": str,
    "commonName": str,
    "isCA": bool,
    "duration": str,
    "renewBefore": str,
    "dnsNames": list,
    "ipAddresses": list,
    "usages": list,
    "privateKey": dict,
    "issuerRef": dict,
}
_PRIVATE_KEY = {
    "algorithm": {"RSA", "ECDSA", "Ed25519"},
    "size": int,
    "rotationPolicy": {"Always", "Never"},
}
_USAGES = {"server auth", "client auth", "digital signature", "key encipherment", "cert sign"}
_DURATION = re.compile(r"(\d+h)?(\d+m)?(\d+s)?")


def _typed(where: str, value: dict[str, Any], fields: dict[str, Any]) -> None:
    for key, item in value.items():
        assert key in fields, f"{where}: unknown field {key!r}"
        wanted = fields[key]
        if isinstance(wanted, set):
            assert item in wanted, f"{where}.{key}: {item!r}"
        else:
            assert isinstance(item, wanted), f"{where}.{key}: {item!r}"


def test_cert_manager_objects_use_fields_cert_manager_knows(rendered: Rendered) -> None:
    for certificate in rendered.all("Certificate"):
        where = f"Certificate/{certificate['metadata']['name']}"
        assert certificate["apiVersion"] == "cert-manager.io/v1"
        spec = certificate["spec"]
        _typed(where, spec, _CERTIFICATE_SPEC)
        _typed(f"{where}.privateKey", spec["privateKey"], _PRIVATE_KEY)
        _typed(f"{where}.issuerRef", spec["issuerRef"], {"kind": {"Issuer"}, "name": str})
        assert set(spec.get("usages", [])) <= _USAGES, where
        for key in ("duration", "renewBefore"):
            assert _DURATION.fullmatch(spec.get(key, "")), f"{where}.{key}"
    for issuer in rendered.all("Issuer"):
        assert issuer["apiVersion"] == "cert-manager.io/v1"
        [(kind, config)] = issuer["spec"].items()
        assert kind in ("selfSigned", "ca"), issuer["metadata"]["name"]
        _typed(f"Issuer/{issuer['metadata']['name']}", config, {"secretName": str})
