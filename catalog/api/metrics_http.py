"""``GET /metrics``: this process's Prometheus metrics, behind the HTTP access control.

    listener = HttpListener("metrics", "0.0.0.0:9102", metrics_app(access), tls=…)

The route needs the ``metrics`` permission (roles ``metrics``, ``viewer``, ``operator``,
``admin``); without an ``auth`` section it is open, which the listener's exposure rule keeps to
loopback (or to a network policy named with ``insecure_serve``).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from catalog import metrics
from catalog.api.access import Access, access_middleware


async def _scrape(_: web.Request) -> web.Response:
    # Off the event loop: the collectors read /proc and every series' lock.
    body, content_type = await asyncio.to_thread(metrics.render)
    return web.Response(body=body, headers={"Content-Type": content_type})


def metrics_app(access: Access) -> web.Application:
    app = web.Application(middlewares=[access_middleware(access)], client_max_size=4096)
    app.router.add_get("/metrics", _scrape, allow_head=False)
    return app
