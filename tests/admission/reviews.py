"""AdmissionReview requests shaped as the API server sends them (admission.k8s.io/v1): the
Pod fixtures under ``fixtures/`` are whole requests; the workloads are built here with the
fields the API server has defaulted by the time it calls a webhook."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"

# kind → (API group, version, resource, where the pod template's spec sits)
KINDS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "Pod": ("", "v1", "pods", ("spec",)),
    "Deployment": ("apps", "v1", "deployments", ("spec", "template", "spec")),
    "ReplicaSet": ("apps", "v1", "replicasets", ("spec", "template", "spec")),
    "StatefulSet": ("apps", "v1", "statefulsets", ("spec", "template", "spec")),
    "DaemonSet": ("apps", "v1", "daemonsets", ("spec", "template", "spec")),
    "Job": ("batch", "v1", "jobs", ("spec", "template", "spec")),
    "CronJob": ("batch", "v1", "cronjobs", ("spec", "jobTemplate", "spec", "template", "spec")),
    "ReplicationController": ("", "v1", "replicationcontrollers", ("spec", "template", "spec")),
}


def fixture(name: str, **images: str) -> dict[str, Any]:
    """A request from ``fixtures/``, its ``{{NAME}}`` placeholders replaced."""
    text = (FIXTURES / name).read_text()
    for key, value in images.items():
        text = text.replace("{{" + key.upper() + "}}", value)
    document: dict[str, Any] = json.loads(text)
    return document


def container(name: str, image: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod_spec(
    containers: list[str], init: tuple[str, ...] = (), restart: str = "Always"
) -> dict[str, Any]:
    return {
        "initContainers": [container(f"init-{i}", image) for i, image in enumerate(init)],
        "containers": [container(f"c{i}", image) for i, image in enumerate(containers)],
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    }


def workload(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The object of ``kind`` running ``spec``, with the API server's defaults."""
    group, version, _, _ = KINDS[kind]
    labels = {"app": name}
    metadata = {"name": name, "namespace": namespace, "labels": labels}
    api_version = f"{group}/{version}" if group else version
    if kind == "Pod":
        return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}
    template = {"metadata": {"labels": labels}, "spec": spec}
    selector = {"matchLabels": labels}
    body: dict[str, Any]
    if kind == "Deployment":
        body = {
            "replicas": 2,
            "selector": selector,
            "template": template,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        }
    elif kind == "ReplicaSet":
        body = {"replicas": 1, "selector": selector, "template": template}
    elif kind == "StatefulSet":
        body = {
            "replicas": 1,
            "selector": selector,
            "template": template,
            "serviceName": name,
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
        }
    elif kind == "DaemonSet":
        body = {
            "selector": selector,
            "template": template,
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
            },
            "revisionHistoryLimit": 10,
        }
    elif kind == "Job":
        body = {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 6,
            "completionMode": "NonIndexed",
            "suspend": False,
            "template": template,
        }
    elif kind == "CronJob":
        body = {
            "schedule": "*/5 * * * *",
            "concurrencyPolicy": "Allow",
            "suspend": False,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {},
                "spec": {"backoffLimit": 6, "template": template},
            },
        }
    else:  # ReplicationController
        body = {"replicas": 1, "selector": labels, "template": template}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": body}


def review(
    obj: dict[str, Any],
    *,
    operation: str = "CREATE",
    dry_run: bool = False,
    user: str = "system:serviceaccount:kube-system:deployment-controller",
    sub_resource: str | None = None,
    old: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The AdmissionReview the API server posts for ``obj``."""
    kind = obj["kind"]
    group, version, resource, _ = KINDS[kind]
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"]["namespace"],
        "operation": operation,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {
            "kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions",
            "apiVersion": "meta.k8s.io/v1",
        },
    }
    if sub_resource:
        request["subResource"] = request["requestSubResource"] = sub_resource
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec inside ``obj``."""
    spec = obj
    for key in KINDS[obj["kind"]][3]:
        spec = spec[key]
    return spec


def images_of(obj: dict[str, Any]) -> list[str]:
    spec = spec_of(obj)
    return [
        c["image"]
        for field in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(field, [])
    ]


def copied(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
