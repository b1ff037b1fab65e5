"""An ``admission.k8s.io/v1`` AdmissionReview request, read from hostile bytes, and its answer.

The API server's body is read only when it is within the size the listener allows; every field
used is type-checked, so a malformed review is one :class:`ReviewError` line, never a traceback.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from catalog.errors import InvalidArgument
from catalog.oci import boundedjson

API_VERSION = "admission.k8s.io/v1"
# What the API server shows of one warning, and of all of them (k8s.io/apiserver warnings).
MAX_WARNING = 256
MAX_WARNINGS_TOTAL = 4096
MAX_MESSAGE = 1024  # the denial kubectl prints: one screen


class ReviewError(InvalidArgument):
    """A body that is not an AdmissionReview request this webhook can answer."""


class Request(NamedTuple):  # a tuple: built for every review, cheaply
    uid: str
    kind: str  # the object's kind: Pod, Deployment, CronJob…
    sub_resource: str  # "ephemeralcontainers" for pods/ephemeralcontainers, else ""
    name: str
    namespace: str
    operation: str
    user: str
    dry_run: bool
    object: Mapping[str, Any] | None

    @property
    def object_ref(self) -> str:
        """``Deployment/web`` (``Pod/web-abc/ephemeralcontainers``): how logs name it."""
        ref = f"{self.kind}/{self.name or '(unnamed)'}"
        return f"{ref}/{self.sub_resource}" if self.sub_resource else ref


def _text(value: object, field: str, *, required: bool = False, limit: int = 512) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ReviewError(f"request.{field} must be a non-empty string")
    if len(value) > limit:
        raise ReviewError(f"request.{field} is longer than {limit} characters")
    return value


def _mapping(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):  # what JSON decodes to (a dict check costs less)
        raise ReviewError(f"{field} must be an object")
    return value


def parse_review(body: bytes) -> Request:
    """The review's request; ReviewError (one line) when it is not one."""
    try:
        # Depth and values counted before anything is built (JSONRefused is a ValueError).
        document = boundedjson.loads(body, max_depth=64, max_values=2_000_000)
    except ValueError:
        raise ReviewError("the body is not JSON") from None
    review = _mapping(document, "the review")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != "AdmissionReview":
        raise ReviewError(f"expected an AdmissionReview of apiVersion {API_VERSION}")
    request = _mapping(review.get("request"), "request")
    kind = _mapping(request.get("kind"), "request.kind")
    user = request.get("userInfo")
    obj = request.get("object")
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    name = request.get("name") or (
        metadata.get("name") or metadata.get("generateName") if isinstance(metadata, dict) else None
    )
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ReviewError("request.dryRun must be true or false")
    if obj is not None and not isinstance(obj, dict):
        raise ReviewError("request.object must be an object")
    return Request(
        uid=_text(request.get("uid"), "uid", required=True, limit=128),
        kind=_text(kind.get("kind"), "kind.kind", required=True, limit=128),
        sub_resource=_text(request.get("subResource"), "subResource", limit=128),
        name=_text(name, "name", limit=253),
        namespace=_text(request.get("namespace"), "namespace", limit=253),
        operation=_text(request.get("operation"), "operation", required=True, limit=16),
        user=_text(user.get("username") if isinstance(user, dict) else None, "userInfo"),
        dry_run=dry_run,
        object=obj,
    )


def bounded(lines: Sequence[str], each: int, total: int) -> list[str]:
    """``lines`` cut to ``each`` characters, as many as fit in ``total``."""
    kept: list[str] = []
    used = 0
    for line in lines:
        line = line if len(line) <= each else line[: each - 1] + "…"
        if used + len(line) > total:
            break
        kept.append(line)
        used += len(line)
    return kept


def response(
    uid: str,
    *,
    allowed: bool,
    message: str | None = None,
    warnings: Sequence[str] = (),
    patch: Sequence[Mapping[str, Any]] = (),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The AdmissionReview answering request ``uid``."""
    answer: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if message is not None:
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        answer["status"] = (
            {"code": 403, "reason": "Forbidden", "message": message}
            if not allowed
            else {"message": message}
        )
    shown = bounded(warnings, MAX_WARNING, MAX_WARNINGS_TOTAL)
    if shown:
        answer["warnings"] = shown
    if patch:
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(
            json.dumps(list(patch), separators=(",", ":")).encode()
        ).decode()
    if annotations:
        answer["auditAnnotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": answer}
