"""The outermost server interceptor: each call gets a request id for its log lines, and is
counted and timed by method and final status code (``xregistry_grpc_*``).

Outermost, so the code it sees is the one the caller gets: a domain error mapped by
:mod:`catalog.api.errors`, a refusal by :mod:`catalog.api.access`, or OK. The request id is the
caller's ``x-request-id`` when it is a short token, a fresh one otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from catalog import logs, metrics
from catalog.api.handler_cache import WrappingInterceptor

Context = grpc.aio.ServicerContext[Any, Any]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


# Fresh ids: this process's random prefix and a counter (a uuid4 per call costs ten times more).
_PREFIX = uuid.uuid4().hex[:8]
_NEXT = itertools.count(1)


def request_id(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return f"{_PREFIX}-{next(_NEXT):x}"


def _code(context: Context, raised: BaseException | None) -> str:
    code: grpc.StatusCode | None = context.code()  # None until set (the stubs say otherwise)
    if code is not None:
        return code.name
    if raised is None:
        return "OK"
    if isinstance(raised, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"  # the caller went away, or stopped reading a stream
    return "UNKNOWN"  # grpc's answer to an exception nobody mapped


@contextlib.contextmanager
def _observing_call(method: str, context: Context) -> Iterator[None]:
    """One call, unary or streaming: its request id in the logs, its code and duration in the
    metrics (whatever it raised)."""
    started = time.monotonic()
    raised: BaseException | None = None
    with logs.request(request_id(context)):
        try:
            yield
        except BaseException as exc:
            raised = exc
            raise
        finally:
            metrics.grpc_handled(method, _code(context, raised), time.monotonic() - started)


def _observed(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            with _observing_call(method, context):
                async for response in behavior(request, context):
                    yield response

        return stream

    async def call(request: Any, context: Context) -> Any:
        with _observing_call(method, context):
            result = behavior(request, context)
            return (await result) if inspect.isawaitable(result) else result

    return call


class ObservingInterceptor(WrappingInterceptor):
    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return _observing(handler, method)


def _observing(
    handler: grpc.RpcMethodHandler[Any, Any], method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    for kind in _KINDS:  # grpc's handlers are named tuples: one behaviour is set
        behavior = getattr(handler, kind)
        if behavior is not None:
            replaced: grpc.RpcMethodHandler[Any, Any] = handler._replace(  # type: ignore[attr-defined]
                **{kind: _observed(behavior, method)}
            )
            return replaced
    return handler
