"""The admission webhook over HTTPS: ``POST /admission/validate`` and ``/admission/mutate``,
thin like the servicers (bound the body, read ``?timeout=``, call :class:`Admission`, map a bad
review to 400), behind the same access control as every HTTP route.

    listener = admission_listener(config, gate, access)   # None when admission.listen is not set
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType

from aiohttp import web

from catalog.admission import Admission, KnownLabels, KubernetesLabels, LabelSource, ReviewError
from catalog.api.access.control import Access
from catalog.api.access.http import access_middleware
from catalog.api.access.permissions import ENDPOINTS, Permission
from catalog.api.http import HttpListener
from catalog.app.admission_config import AdmissionSettings
from catalog.app.config import ServeConfig
from catalog.durations import GO_TIMEOUT
from catalog.gate import Gate

log = logging.getLogger("xregistry.admission")

VALIDATE = "/admission/validate"
MUTATE = "/admission/mutate"
# With admission.allow_anonymous: the two routes open to callers without credentials.
ANONYMOUS_ENDPOINTS: Mapping[str, Permission] = MappingProxyType(
    {**ENDPOINTS, f"POST {VALIDATE}": Permission.OPEN, f"POST {MUTATE}": Permission.OPEN}
)
# Told of every review answered: (route, seconds, allowed). The metrics hook
# (xregistry_admission_* in catalog.metrics) is wired here by the server.
ReviewObserver = Callable[[str, float, bool], None]


# The API server sends the same ``timeout`` on every call: parsed once (a few texts kept).
_seconds = lru_cache(maxsize=16)(GO_TIMEOUT.seconds)


def request_timeout(query: Mapping[str, str]) -> float | None:
    """The API server's ``?timeout=10s`` (a Go duration: ``ms``, ``s`` or ``m``), or None."""
    text = query.get("timeout")
    if text is None:
        return None
    seconds = _seconds(text)
    if seconds is None:
        raise ReviewError(f"bad timeout {text[:40]!r}: expected a duration such as 10s")
    return seconds


def admission_app(
    admission: Admission,
    config: ServeConfig,
    access: Access,
    observe: ReviewObserver | None = None,
    *,
    endpoints: Mapping[str, Permission] | None = None,
) -> web.Application:
    """The two routes behind access control; ``endpoints`` replaces the permission table (a
    benchmark adds a route of its own beside them)."""
    settings = config.admission
    if endpoints is None:
        endpoints = ANONYMOUS_ENDPOINTS if settings.allow_anonymous else ENDPOINTS

    async def handle(request: web.Request, mutate: bool) -> web.Response:
        started = time.perf_counter()
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send application/json\n")
        try:
            body = await request.read()  # at most client_max_size: 413 above
            answer = await admission.review(
                body, budget=request_timeout(request.query), mutate=mutate
            )
        except ReviewError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        if observe is not None:
            observe(request.path, time.perf_counter() - started, answer["response"]["allowed"])
        # The answer is ASCII JSON: handed over as bytes, nothing to encode again.
        return web.Response(body=json.dumps(answer).encode(), content_type="application/json")

    async def validate(request: web.Request) -> web.Response:
        return await handle(request, mutate=False)

    async def mutate(request: web.Request) -> web.Response:
        return await handle(request, mutate=True)

    app = web.Application(
        middlewares=[access_middleware(access, endpoints)],
        client_max_size=settings.max_body_bytes,
    )
    app.router.add_post(VALIDATE, validate)
    app.router.add_post(MUTATE, mutate)
    return app


def label_source(settings: AdmissionSettings) -> LabelSource:
    if settings.namespace_labels.source == "kubernetes":
        return KubernetesLabels(settings.namespace_labels)
    return KnownLabels(None)


def admission_listener(
    config: ServeConfig, gate: Gate, access: Access, observe: ReviewObserver | None = None
) -> HttpListener | None:
    """The webhook's listener when ``admission.listen`` is set (its exposure was checked with
    the server's, in :meth:`ServeConfig.exposure_warnings`)."""
    settings = config.admission
    if settings.listen is None:
        return None
    if settings.allow_anonymous:
        log.warning(
            "admission: reviews are answered to callers without credentials "
            "(admission.allow_anonymous): only the API server may reach %s",
            settings.listen,
        )
    labels = label_source(settings)
    app = admission_app(Admission(gate, settings, labels), config, access, observe)

    async def close(_: web.Application) -> None:
        if isinstance(labels, KubernetesLabels):
            await labels.close()

    app.on_cleanup.append(close)
    return HttpListener("admission", settings.listen, app, tls=settings.tls)
