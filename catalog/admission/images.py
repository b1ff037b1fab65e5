"""Where a Kubernetes object names its images: every container of its pod spec, with the exact
JSON pointer of each ``image`` field (escaped as RFC 6901 says), so a patch can pin it there."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

from catalog.admission.review import Request, ReviewError

# Where each kind keeps its pod spec (the apps, batch and core kinds with a pod template).
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
MAX_IMAGE = 1024  # characters of one image reference; a real one is under 300


class ImageSite(NamedTuple):  # a tuple: five or more of them built per review
    pointer: str  # "/spec/template/spec/containers/0/image"
    image: str
    container: str  # "containers[web]", for messages


def escape(token: str) -> str:
    """One JSON-pointer reference token (RFC 6901: ``~`` → ``~0``, ``/`` → ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(parts: tuple[str | int, ...]) -> str:
    return "".join("/" + escape(str(part)) for part in parts)


@cache  # a kind's pod spec path and a list's name: a handful of keys, all constants
def _list_pointer(path: tuple[str, ...], field: str) -> str:
    return pointer((*path, field))


def image_sites(request: Request, max_containers: int) -> list[ImageSite]:
    """Every container image of the object, in spec order; only the ephemeral containers for
    the ``pods/ephemeralcontainers`` subresource (the only ones such a request can change)."""
    path = POD_SPEC_PATHS.get(request.kind)
    if path is None or request.object is None:
        return []
    spec: Any = request.object
    for key in path:
        spec = spec.get(key) if isinstance(spec, dict) else None  # JSON's objects are dicts
    if spec is None:
        return []
    if not isinstance(spec, dict):
        raise ReviewError(f"{pointer(path)} must be an object")
    lists = ("ephemeralContainers",) if request.sub_resource == "ephemeralcontainers" else None
    sites: list[ImageSite] = []
    for field in lists or CONTAINER_LISTS:
        containers = spec.get(field)
        if containers is None:
            continue
        where = _list_pointer(path, field)
        if not isinstance(containers, list):
            raise ReviewError(f"{where} must be a list")
        if len(sites) + len(containers) > max_containers:
            raise ReviewError(f"the object has more than {max_containers} containers")
        for index, container in enumerate(containers):
            if not isinstance(container, dict):
                raise ReviewError(f"{where}/{index} must be an object")
            image = container.get("image")
            if image is None:
                continue  # the API server's own validation refuses it
            if not isinstance(image, str) or not image or len(image) > MAX_IMAGE:
                raise ReviewError(
                    f"{where}/{index}/image must be an image reference "
                    f"of at most {MAX_IMAGE} characters"
                )
            name = container.get("name")
            label = f"{field}[{name if isinstance(name, str) else index}]"
            sites.append(ImageSite(f"{where}/{index}/image", image, label))
    return sites
