"""deploy/kubernetes/ rendered (base and every overlay) and checked offline: every object against
the Kubernetes JSON schemas, the config against the server's own loader, and the pods against the
deny-by-default rules of docs/deploy.md."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from catalog.app.config import load_config
from catalog.app.tls_config import exposure_warnings, split_address
from tests.deploy.conftest import (
    CONFIG_PATH,
    DATA_DIR,
    TLS_DIR,
    UID,
    Object,
    Rendered,
    config_text,
    containers,
    mount,
    pod_specs,
    render,
    server,
    server_container,
    volume,
)

# The oldest Kubernetes docs/deploy.md supports (gRPC probes GA 1.27, the preStop sleep action
# 1.30) and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

# cert-manager's kinds are CRDs, absent from the Kubernetes schemas (and their schemas are not
# vendored here): test_manifests_admission.py checks the fields the webhooks depend on instead.
NO_SCHEMA = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate")}

# Environment variables whose value is a credential: only ever from a Secret.
_SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY$|DATABASE_URL|CREDENTIAL")
_URL_WITH_PASSWORD = re.compile(r"://[^/\s@]*:[^/\s@]*@")


def _validate(obj: Object, version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} ({version}): {where}: {exc.message}")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    rendered: Rendered, version: str
) -> None:
    checked = 0
    for obj in rendered.objects:
        if (obj["apiVersion"], obj["kind"]) in NO_SCHEMA:
            continue
        _validate(obj, version)
        checked += 1
    assert checked >= 10, f"{rendered.layer}: only {checked} objects"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "template", "spec", "containers", 0, "readinesProbe"), {}),  # a typo
        (("spec", "replicas"), "2"),
        (("spec", "template", "spec", "securityContext", "runAsUser"), "nobody"),
    ],
)
def test_the_schema_check_refuses_a_broken_deployment(path: tuple[Any, ...], value: Any) -> None:
    """The strict schemas catch unknown fields and wrong types: the check above can fail."""
    broken = copy.deepcopy(server(render("base")))
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_only_cert_manager_kinds_lack_a_schema(rendered: Rendered) -> None:
    for obj in rendered.objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSIONS[-1], strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert (obj["apiVersion"], obj["kind"]) in NO_SCHEMA


# --- the serve configuration ----------------------------------------------------------------


def _config(rendered: Rendered) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(config_text(rendered))
    return raw


def test_the_config_loads_with_the_server_loader(rendered: Rendered, tmp_path: Path) -> None:
    raw = _config(rendered)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    # Off loopback, so TLS and authentication, and nothing for the exposure rule to warn about.
    assert config.exposure_warnings() == []
    assert config.tls is not None
    assert config.tls.cert_file == Path(TLS_DIR, "tls.crt")
    assert config.tls.key_file == Path(TLS_DIR, "tls.key")
    assert "database" not in raw, "the database URL comes from $XREGISTRY_DATABASE_URL only"


def test_the_http_listeners_obey_the_exposure_rule(rendered: Rendered) -> None:
    raw = _config(rendered)
    for section in ("admission", "metrics"):
        listener = raw[section]
        assert (
            exposure_warnings(
                listener["listen"],
                tls="tls" in listener,
                authenticated=bool(raw["auth"].get("tokens")),
                insecure_serve=None,
            )
            == []
        ), section
        assert listener["tls"] == raw["tls"], f"{section}: the mounted certificate"
    # The plain-text health listener serves the open health service and nothing else.
    assert set(raw["health"]) == {"listen"}


def _listen_port(address: str) -> int:
    port = split_address(address)[1]
    assert port is not None, address
    return port


def test_every_listener_is_a_declared_container_port(rendered: Rendered) -> None:
    raw = _config(rendered)
    ports = {p["name"]: p["containerPort"] for p in server_container(rendered)["ports"]}
    assert ports == {
        "grpc": _listen_port(raw["listen"]),
        "health": _listen_port(raw["health"]["listen"]),
        "admission": _listen_port(raw["admission"]["listen"]),
        "metrics": _listen_port(raw["metrics"]["listen"]),
    }


def test_the_service_reaches_every_port_but_health(rendered: Rendered) -> None:
    service = rendered.one("Service", "xregistry")
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"grpc", "admission", "metrics"}
    pod_labels = server(rendered)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


# --- the pods: deny by default --------------------------------------------------------------


def _effective(pod: Object, container: Object, key: str) -> Any:
    own = container.get("securityContext", {})
    return own[key] if key in own else pod.get("securityContext", {}).get(key)


def test_no_container_runs_as_root_or_with_privileges(rendered: Rendered) -> None:
    specs = pod_specs(rendered)
    assert specs, rendered.layer
    for where, pod in specs:
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert pod.get(host) is not True, f"{where} {host}"
        for c in containers(pod):
            name = f"{where} {c['name']}"
            assert _effective(pod, c, "runAsNonRoot") is True, name
            assert _effective(pod, c, "runAsUser") not in (None, 0), name
            assert _effective(pod, c, "runAsGroup") not in (None, 0), name
            own = c.get("securityContext", {})
            assert own.get("readOnlyRootFilesystem") is True, name
            assert own.get("allowPrivilegeEscalation") is False, name
            assert own.get("privileged", False) is False, name
            assert own.get("capabilities") == {"drop": ["ALL"]}, name
            assert _effective(pod, c, "seccompProfile") == {"type": "RuntimeDefault"}, name


def test_only_the_server_holds_a_kubernetes_token_and_it_reads_namespaces(
    rendered: Rendered,
) -> None:
    source = _config(rendered)["admission"]["namespace_labels"]["source"]
    for where, pod in pod_specs(rendered):
        wanted = where == "Deployment/xregistry" and source == "kubernetes"
        assert pod.get("automountServiceAccountToken") is wanted, where
    account = rendered.one("ServiceAccount", "xregistry")
    assert account["automountServiceAccountToken"] is False
    deployment = server(rendered)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "xregistry"
    [role] = rendered.all("ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]
    assert rendered.all("Role") == []
    assert rendered.all("RoleBinding") == []
    [binding] = rendered.all("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "xregistry", "namespace": "xregistry"}
    ]


def test_every_container_has_requests_and_limits(rendered: Rendered) -> None:
    for where, pod in pod_specs(rendered):
        for c in containers(pod):
            resources = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where} {c['name']}"


def test_no_secret_is_shipped_or_written_in_plain_text(rendered: Rendered) -> None:
    assert rendered.all("Secret") == [], "Secrets are created by the operator, never shipped"
    for where, pod in pod_specs(rendered):
        for c in containers(pod):
            for env in c.get("env", []):
                name = f"{where} {c['name']} ${env['name']}"
                if _SECRET_NAME.search(env["name"]):
                    assert set(env) == {"name", "valueFrom"}, name
                    assert set(env["valueFrom"]) == {"secretKeyRef"}, name
                assert not _URL_WITH_PASSWORD.search(env.get("value", "")), name
            assert "envFrom" not in c, f"{where}: name each variable"
    assert not _URL_WITH_PASSWORD.search(config_text(rendered))


# The volume types the `restricted` Pod Security Standard (the namespace's label) allows.
_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def test_pods_use_only_the_volume_types_the_namespace_allows(rendered: Rendered) -> None:
    namespace = rendered.one("Namespace", "xregistry")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for where, pod in pod_specs(rendered):
        for v in pod.get("volumes", []):
            assert set(v) - {"name"} <= _RESTRICTED_VOLUMES, f"{where} {v['name']}"


def test_the_server_reads_its_database_url_from_a_secret(rendered: Rendered) -> None:
    env = {e["name"]: e for e in server_container(rendered)["env"]}
    assert env["XREGISTRY_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "xregistry",
        "key": "database-url",
    }
    # Replicas read each other's page tokens.
    assert env["XREGISTRY_PAGE_TOKEN_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "xregistry"


def test_the_server_runs_the_image_entrypoint_with_the_mounted_config(rendered: Rendered) -> None:
    container = server_container(rendered)
    assert "command" not in container, "the image's entrypoint is `xregistry`"
    assert container["args"] == ["serve", "--config", CONFIG_PATH]
    pod = server(rendered)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["runAsGroup"] == UID
    assert pod["securityContext"]["fsGroup"] == UID


def test_an_init_container_migrates_the_servers_database_first(rendered: Rendered) -> None:
    """No probe stops a long migration there (docs/deploy.md, "Upgrades")."""
    pod = server(rendered)["spec"]["template"]["spec"]
    container = server_container(rendered)
    [init] = pod["initContainers"]
    assert init["image"] == container["image"]
    assert init["args"] == [*container["args"], "--migrate-only"]
    database = {e["name"]: e for e in init["env"]}["XREGISTRY_DATABASE_URL"]
    assert database == {e["name"]: e for e in container["env"]}["XREGISTRY_DATABASE_URL"]
    [config] = [m for m in init["volumeMounts"] if m["mountPath"] == CONFIG_PATH]
    assert config == mount(rendered, CONFIG_PATH)


def test_the_server_writes_only_to_scratch_volumes(rendered: Rendered) -> None:
    for path in (DATA_DIR, "/tmp"):
        found = mount(rendered, path)
        assert "subPath" not in found
        assert set(volume(rendered, found["name"])) == {"name", "emptyDir"}, path
    writable = [m["mountPath"] for m in server_container(rendered)["volumeMounts"]]
    writable = [p for p in writable if not mount(rendered, p).get("readOnly")]
    assert sorted(writable) == sorted([DATA_DIR, "/tmp"])


def test_config_and_tls_are_mounted_read_only_where_the_image_expects(
    rendered: Rendered,
) -> None:
    config = mount(rendered, CONFIG_PATH)
    assert config["readOnly"] is True
    assert "configMap" in volume(rendered, config["name"])
    tls = mount(rendered, TLS_DIR)
    # A subPath mount would never see a renewed certificate.
    assert tls["readOnly"] is True
    assert "subPath" not in tls
    assert volume(rendered, tls["name"])["secret"]["secretName"] == "xregistry-tls"


def test_probes_ask_the_health_service(rendered: Rendered) -> None:
    container = server_container(rendered)
    health_port = _listen_port(_config(rendered)["health"]["listen"])
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["grpc"] == {"port": health_port}, probe
    # Liveness does not follow the database (docs/deploy.md, "Probes").
    assert container["livenessProbe"]["tcpSocket"] == {"port": health_port}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, "room for migrations"


def test_a_drain_leaves_a_replica_to_answer(rendered: Rendered) -> None:
    deployment = server(rendered)
    budget = rendered.one("PodDisruptionBudget", "xregistry")
    assert deployment["spec"]["replicas"] >= 2
    assert budget["spec"]["minAvailable"] == 1
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
