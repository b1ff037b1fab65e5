"""Namespace labels for policies that select namespaces by label: read from the Kubernetes API
with the pod's service account (``get namespaces``), cached, bounded in time and size.

An AdmissionReview carries the object, not its namespace's labels; a lookup that fails gives
``None`` ("unknown"), and policies then treat their label selectors as matching, so a namespace
the webhook cannot read does not escape an enforcing policy.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Mapping
from typing import Protocol

import aiohttp

from catalog.app.admission_config import NamespaceLabels
from catalog.app.tls_config import read_credential_file
from catalog.errors import ConfigError
from catalog.oci import boundedjson

log = logging.getLogger("xregistry.admission")
MAX_NAMESPACE_BYTES = 256 << 10  # a Namespace object is a few KB; managedFields included
MAX_CACHED = 10_000
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class LabelSource(Protocol):
    async def labels(self, namespace: str) -> Mapping[str, str] | None: ...


class KnownLabels:
    """Labels given up front (``xregistry admission review --namespace-label``)."""

    def __init__(self, labels: Mapping[str, str] | None) -> None:
        self.given = labels  # read directly by Admission: no await for what is at hand

    async def labels(self, namespace: str) -> Mapping[str, str] | None:
        return self.given


class KubernetesLabels:
    """``GET /api/v1/namespaces/{name}``, each answer kept ``cache_seconds``."""

    def __init__(self, settings: NamespaceLabels) -> None:
        self.settings = settings
        self._cache: dict[str, tuple[float, Mapping[str, str]]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext:
        ca = read_credential_file(self.settings.ca_file, "the Kubernetes API CA")
        return ssl.create_default_context(cadata=ca.decode())

    async def labels(self, namespace: str) -> Mapping[str, str] | None:
        if not _NAME.fullmatch(namespace):
            return None  # not a namespace name: nothing to ask (and nothing to put in a URL)
        now = time.monotonic()
        cached = self._cache.get(namespace)
        if cached is not None and now - cached[0] < self.settings.cache_seconds:
            return cached[1]
        try:
            found = await asyncio.wait_for(self._fetch(namespace), self.settings.timeout_seconds)
        except (TimeoutError, aiohttp.ClientError, ConfigError, ValueError) as exc:
            log.warning("cannot read the labels of namespace %s: %s", namespace, _why(exc))
            return None
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[namespace] = (now, found)
        return found

    async def _fetch(self, namespace: str) -> Mapping[str, str]:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl())
            self._session = aiohttp.ClientSession(connector=connector)
        # Read per request: the kubelet rotates projected service-account tokens.
        token = read_credential_file(self.settings.token_file, "the service-account token")
        url = f"{self.settings.api_server}/api/v1/namespaces/{namespace}"
        headers = {"Authorization": f"Bearer {token.decode().strip()}"}
        async with self._session.get(url, headers=headers, allow_redirects=False) as answer:
            if answer.status != 200:
                raise ValueError(f"the API server answered {answer.status}")
            body = await answer.content.read(MAX_NAMESPACE_BYTES + 1)
        if len(body) > MAX_NAMESPACE_BYTES:
            raise ValueError(f"the namespace is larger than {MAX_NAMESPACE_BYTES} bytes")
        # Bounded (json.loads raises RecursionError on deep nesting); JSONRefused is a ValueError.
        document = boundedjson.loads(body, max_depth=64, max_values=100_000)
        metadata = document.get("metadata") if isinstance(document, dict) else None
        labels = (metadata.get("labels") if isinstance(metadata, dict) else None) or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ValueError("metadata.labels is not a map of strings")
        return labels

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
