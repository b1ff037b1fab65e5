"""One server interceptor: authenticate the caller, authorize the method, run the handler as
the caller (:func:`catalog.principals.acting_as`), for every method of every service.

Like :mod:`catalog.api.errors` it wraps the handler's behaviour rather than checking before the
handler is chosen: the TLS auth context exists only inside the call, and the principal must be
set inside the call (also while a streaming method yields) for everything below to read it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
import grpc.aio

from catalog.api.access.authenticate import Authenticator, Unauthenticated
from catalog.api.access.authorize import Authorizer
from catalog.api.access.control import Access
from catalog.api.access.permissions import METHODS, Permission
from catalog.api.handler_cache import WrappingInterceptor
from catalog.principals import ANONYMOUS, Principal, acting_as

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
Admit = Callable[[Context], Awaitable[Principal]]


async def _anonymous(context: Context) -> Principal:
    return ANONYMOUS


class AccessInterceptor(WrappingInterceptor):
    """Without an ``auth`` section every call runs as the anonymous principal."""

    def __init__(self, access: Access) -> None:
        self.authenticator = access.authenticator
        self._authorizer = access.authorizer
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
            return _wrap(handler, _anonymous)
        return _wrap(handler, _admission(method, self.authenticator, self._authorizer))


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


def _unary_response(behavior: Callable[..., Any], admit: Admit) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: Context) -> Any:
        with acting_as(await admit(context)):
            result = behavior(request, context)
            if inspect.isawaitable(result):
                result = await result
            return result

    return handler


def _stream_response(behavior: Callable[..., Any], admit: Admit) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(behavior):
        # A coroutine that writes its responses with ``context.write()``.
        async def writer(request: Any, context: Context) -> None:
            with acting_as(await admit(context)):
                await behavior(request, context)

        return writer

    async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
        with acting_as(await admit(context)):
            responses = behavior(request, context)
            if hasattr(responses, "__aiter__"):
                async for response in responses:
                    yield response
            else:
                sync_responses: Iterable[Any] = responses
                for response in sync_responses:
                    yield response

    return generator


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any], admit: Admit
) -> grpc.RpcMethodHandler[Any, Any]:
    deserializer, serializer = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _unary_response(handler.unary_unary, admit), deserializer, serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _stream_response(handler.unary_stream, admit), deserializer, serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _unary_response(handler.stream_unary, admit), deserializer, serializer
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _stream_response(handler.stream_stream, admit), deserializer, serializer
        )
    return handler
