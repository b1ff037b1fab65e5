"""One server interceptor: authenticate the caller, authorize the method, run the handler as
the caller (:func:`catalog.principals.acting_as`), for every method of every service.

Like :mod:`catalog.api.errors` it wraps the handler's behaviour rather than checking before the
handler is chosen: the TLS auth context exists only inside the call, and the principal must be
set inside the call (also while a streaming method yields) for everything below to read it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from catalog.api.access.authenticate import Authenticator, Unauthenticated
from catalog.api.access.authorize import Authorizer
from catalog.api.access.control import Access
from catalog.api.access.permissions import METHODS, Permission
from catalog.api.handler_cache import WrappingInterceptor, each_response
from catalog.call_limits import CALLS_AT_ONCE, REFUSED_TRAILER
from catalog.principals import ANONYMOUS, Principal, acting_as

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
Admit = Callable[[Context], Awaitable[Principal]]


class CallSlots:
    """Calls running at once, by principal: past ``at_once`` a principal's call is refused at
    once, so one caller's flood holds at most that many handlers (and their requests) and
    leaves every other caller's calls alone. Counted once the caller is authenticated: gRPC's
    own limit counted calls before that, open to anyone who could connect. Streamed calls
    count too (an EvaluateCatalog holds a thread for the whole walk)."""

    def __init__(self, at_once: int) -> None:
        self.at_once = at_once
        self._running: dict[str, int] = {}  # by kind:name (not groups); the event loop's: no lock

    def running(self, caller: str) -> int:
        """Calls of ``caller`` (``kind:name``) running now."""
        return self._running.get(caller, 0)

    @contextlib.asynccontextmanager
    async def held(self, principal: Principal, context: Context) -> AsyncIterator[None]:
        caller = str(principal)
        running = self._running.get(caller, 0)
        if running >= self.at_once:
            log.info("%s refused a call: %d calls running", principal, running)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{principal} has {running} calls running, the most allowed at once;"
                " retry when one has ended",
                trailing_metadata=(REFUSED_TRAILER,),
            )
        self._running[caller] = running + 1
        try:
            yield
        finally:
            left = self._running[caller] - 1
            if left:
                self._running[caller] = left
            else:
                del self._running[caller]  # the map holds callers with calls running only


async def _anonymous(context: Context) -> Principal:
    return ANONYMOUS


class AccessInterceptor(WrappingInterceptor):
    """Without an ``auth`` section every call runs as the anonymous principal."""

    def __init__(self, access: Access, calls_at_once: int | None = None) -> None:
        self.authenticator = access.authenticator
        self._authorizer = access.authorizer
        self.slots = CallSlots(calls_at_once or CALLS_AT_ONCE)
        super().__init__()
        settings = access.settings
        if settings is not None:
            log.info(
                "authentication: %d static tokens, OIDC issuers [%s], client certificates %s;"
                " %d bindings",
                len(settings.tokens),
                ", ".join(issuer.issuer for issuer in settings.oidc),
                "on" if settings.certificates else "off",
                len(settings.bindings),
            )

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if (
            self.authenticator is None
            or self._authorizer is None
            or METHODS.get(method) is Permission.OPEN
        ):
            # Not counted. Health: never refused for load, or anyone holding calls open could
            # fail the orchestrator's probes. Without authentication (a development server on
            # loopback), every caller is the one anonymous principal: a limit would be the
            # whole server's, one client's calls refusing every other's.
            return _wrap(handler, _anonymous, None)
        return _wrap(handler, _admission(method, self.authenticator, self._authorizer), self.slots)


def _admission(method: str, authenticator: Authenticator, authorizer: Authorizer) -> Admit:
    async def admit(context: Context) -> Principal:
        try:
            principal = await authenticator.principal(
                context.invocation_metadata() or (), context.auth_context
            )
        except Unauthenticated as exc:
            log.info("%s from %s: unauthenticated: %s", method, context.peer(), exc)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if not authorizer.allows(principal, method):
            log.info("%s denied to %s", method, principal)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"{principal} may not call {method}"
            )
        return principal

    return admit


def _unary_response(
    behavior: Callable[..., Any], admit: Admit, slots: CallSlots | None
) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: Context) -> Any:
        principal = await admit(context)
        async with _held(slots, principal, context):
            with acting_as(principal):
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
                return result

    return handler


def _stream_response(
    behavior: Callable[..., Any], admit: Admit, slots: CallSlots | None
) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(behavior):
        # A coroutine that writes its responses with ``context.write()``.
        async def writer(request: Any, context: Context) -> None:
            principal = await admit(context)
            async with _held(slots, principal, context):
                with acting_as(principal):
                    await behavior(request, context)

        return writer

    async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
        principal = await admit(context)
        async with _held(slots, principal, context):
            with acting_as(principal):
                async for response in each_response(behavior(request, context)):
                    yield response

    return generator


def _held(
    slots: CallSlots | None, principal: Principal, context: Context
) -> contextlib.AbstractAsyncContextManager[None]:
    return contextlib.nullcontext() if slots is None else slots.held(principal, context)


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any], admit: Admit, slots: CallSlots | None
) -> grpc.RpcMethodHandler[Any, Any]:
    deserializer, serializer = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _unary_response(handler.unary_unary, admit, slots), deserializer, serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _stream_response(handler.unary_stream, admit, slots), deserializer, serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _unary_response(handler.stream_unary, admit, slots), deserializer, serializer
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _stream_response(handler.stream_stream, admit, slots), deserializer, serializer
        )
    return handler
