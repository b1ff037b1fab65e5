"""Wrapped method handlers kept per method, for the server interceptors.

grpc asks each interceptor for a method's handler on every call; wrapping it anew each time
(inspecting the behaviour, building closures and a handler tuple) was a fixed cost on every
call. A wrapper depends only on the method and the handler it wraps, so it is kept and reused
while the handler below is the same object (it is, for the servicers' handlers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

if TYPE_CHECKING:  # generic only in the stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
# Methods are the registered ones (an unknown method has no handler to wrap): this bounds
# the cache all the same, whatever names callers send.
_MOST = 1024


class HandlerCache:
    def __init__(self) -> None:
        self._kept: dict[str, tuple[Handler, Handler]] = {}

    def wrapped(self, method: str, handler: Handler, wrap: Callable[[], Handler]) -> Handler:
        """``wrap()``'s handler for ``handler`` of ``method``, built once while ``handler``
        stays the same."""
        kept = self._kept.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped = wrap()
        if len(self._kept) < _MOST or method in self._kept:
            self._kept[method] = (handler, wrapped)
        return wrapped


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """A server interceptor that wraps each method's handler (:meth:`wrap`), the wrapper kept
    per method by a :class:`HandlerCache`."""

    def __init__(self) -> None:
        self._handlers = HandlerCache()

    def wrap(self, handler: Handler, method: str) -> Handler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        return self._handlers.wrapped(method, handler, lambda: self.wrap(handler, method))


async def each_response(responses: Any) -> AsyncIterator[Any]:
    """A streaming behaviour's responses, whether it is an async generator or returns an
    iterable: what the interceptors' wrappers yield on."""
    if hasattr(responses, "__aiter__"):
        async for response in responses:
            yield response
    else:
        sync_responses: Iterable[Any] = responses
        for response in sync_responses:
            yield response
