"""``POST /events/distribution/{registry}``: Distribution's notifications for a registry of the
catalog, turned into index runs by :class:`catalog.app.push_events.PushIndexer`.

Answers 200 with what became of the events (``{"queued", "duplicates", "ignored"}``) as soon as
they are queued (Distribution retries anything else, and waits for the answer before sending
the next envelope); 400 for a body that is no envelope, 413 over :data:`MAX_BODY`, 415 for
another content type; 401/403 from the access middleware (the caller needs NOTIFY).
"""

from __future__ import annotations

from aiohttp import web

from catalog.api.access.control import Access
from catalog.api.access.http import access_middleware
from catalog.app.push_events import DISTRIBUTION_EVENTS, PushIndexer, distribution_events
from catalog.errors import InvalidArgument

MAX_BODY = 1 << 20
"""Bytes of one envelope; Distribution sends a few KiB per event."""

_TYPES = frozenset({DISTRIBUTION_EVENTS, "application/json"})


def events_app(indexer: PushIndexer, access: Access) -> web.Application:
    async def distribution(request: web.Request) -> web.Response:
        if request.content_type not in _TYPES:
            raise web.HTTPUnsupportedMediaType(text=f"expected {DISTRIBUTION_EVENTS}\n")
        body = await request.read()
        try:
            events = distribution_events(body)
        except InvalidArgument as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        accepted = await indexer.accept(request.match_info["registry"], events)
        return web.json_response(accepted.as_json())

    app = web.Application(middlewares=[access_middleware(access)], client_max_size=MAX_BODY)
    app.router.add_post("/events/distribution/{registry}", distribution)
    return app
