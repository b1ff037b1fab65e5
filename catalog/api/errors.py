"""Domain exceptions → gRPC status codes, in one place, for every RPC of the server.

:class:`ErrorMappingInterceptor` wraps each method handler (unary and streaming, whatever the
service), so no servicer method can forget the mapping and servicers simply raise
``catalog.errors`` / ``catalog.oci.errors`` exceptions. The choices:

- Errors about the request → INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS.
- The catalog's or a registry's state does not allow the call → FAILED_PRECONDITION. That
  includes content that fails verification (digest or size mismatch, invalid or oversized
  manifests, undecodable signature/SBOM documents): nothing was lost and the catalog stored
  nothing unverified; the *registry's* content has to change before a retry can succeed. DATA_LOSS
  is kept for what it means to operators ("our data is corrupt", usually paged on) and is not
  used for a registry serving bad bytes.
- A registry that cannot be reached, answers 5xx, or throttles us after every retry →
  UNAVAILABLE (retryable).
- A registry that refuses the catalog's credentials (``AuthError``, ``Unauthorized``, ``Denied``)
  → PERMISSION_DENIED. Not UNAUTHENTICATED: that code is about the *caller's* credentials, and
  clients react to it by re-authenticating, which cannot help here.
- A registry error we cannot classify → UNKNOWN, with the registry's message.
- Anything else is a bug: INTERNAL with a generic message and an incident id; the traceback is
  logged with that id and never sent.

- A request whose bytes do not decode as its message → INVALID_ARGUMENT: the deserializer is
  wrapped so that its failure reaches the handler as a :class:`MalformedRequest`, which is refused
  before the servicer sees it (grpc.aio would answer UNKNOWN "Unexpected DecodeError").
- A unary call still running after ``server_deadline`` seconds → DEADLINE_EXCEEDED, whether or not
  the client set a deadline, so no call holds the server's work forever. Server-streaming calls
  (index runs, run watches, catalog evaluations) are bounded by their own run deadlines instead.

A servicer that wants another code calls ``context.abort()`` itself; that passes through.
Details are the exception's message (domain messages are written for users and never carry
secrets), cut to :data:`MAX_DETAILS` characters so that they fit in trailers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc
import grpc.aio

from catalog import errors as domain
from catalog.api.handler_cache import WrappingInterceptor, each_response
from catalog.oci import errors as oci

logger = logging.getLogger(__name__)

Code = grpc.StatusCode
MAX_DETAILS = 2000
SERVER_DEADLINE = 120.0
"""Seconds a unary call may run on the server by default (a client's shorter deadline wins)."""

# First match wins: subclasses before their bases.
STATUS_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    # catalog.errors
    (domain.NotFound, Code.NOT_FOUND),
    (domain.AlreadyExists, Code.ALREADY_EXISTS),
    (domain.InvalidArgument, Code.INVALID_ARGUMENT),
    (domain.FailedPrecondition, Code.FAILED_PRECONDITION),
    (domain.DeadlineExceeded, Code.DEADLINE_EXCEEDED),
    (domain.CatalogUnreachable, Code.UNAVAILABLE),  # its database: retry later
    (domain.ConfigError, Code.FAILED_PRECONDITION),
    (domain.FormatError, Code.FAILED_PRECONDITION),
    # catalog.oci.errors: the request
    (oci.InvalidReference, Code.INVALID_ARGUMENT),
    (oci.InvalidDigest, Code.INVALID_ARGUMENT),
    # content that fails verification (UnsupportedMediaType is an InvalidManifest)
    (oci.DigestMismatch, Code.FAILED_PRECONDITION),
    (oci.SizeMismatch, Code.FAILED_PRECONDITION),
    (oci.ManifestTooLarge, Code.FAILED_PRECONDITION),
    (oci.InvalidManifest, Code.FAILED_PRECONDITION),
    (oci.LayoutError, Code.FAILED_PRECONDITION),
    # registries' answers (NotInRegistry covers ManifestUnknown, BlobUnknown, NameUnknown)
    (oci.AuthError, Code.PERMISSION_DENIED),
    (oci.Unauthorized, Code.PERMISSION_DENIED),
    (oci.Denied, Code.PERMISSION_DENIED),
    (oci.NotInRegistry, Code.NOT_FOUND),
    (oci.RegistryUnavailable, Code.UNAVAILABLE),
    (oci.TooManyRequests, Code.UNAVAILABLE),
    (oci.Rejected, Code.FAILED_PRECONDITION),
    (oci.Unsupported, Code.FAILED_PRECONDITION),
    (oci.RegistryError, Code.UNKNOWN),
)

# Codes that say something about the server side, worth a log line; the others are the caller's.
_LOGGED = frozenset(
    {Code.FAILED_PRECONDITION, Code.UNAVAILABLE, Code.PERMISSION_DENIED, Code.UNKNOWN}
)


def status_code_for(exc_type: type[BaseException]) -> grpc.StatusCode | None:
    """The status code of a domain exception type; None for anything that is not mapped."""
    for cls, code in STATUS_CODES:
        if issubclass(exc_type, cls):
            return code
    return None


def status_for(exc: BaseException, method: str = "") -> tuple[grpc.StatusCode, str]:
    """The status code and details to answer for ``exc``; logs what operators need to see."""
    code = status_code_for(type(exc))
    if code is None:
        incident = uuid.uuid4().hex[:12]
        logger.error("%s failed (incident %s)", method or "RPC", incident, exc_info=exc)
        return Code.INTERNAL, f"internal error (incident {incident})"
    details = str(exc) or type(exc).__name__
    if len(details) > MAX_DETAILS:
        details = details[: MAX_DETAILS - 1] + "…"
    if code in _LOGGED:
        logger.warning("%s: %s: %s", method or "RPC", code.name, details)
    return code, details


Context = grpc.aio.ServicerContext[Any, Any]

KIND_KEY = "xregistry-error-kind"
"""Trailing metadata naming the domain exception (``oci.DigestMismatch``), so that a client can
tell failures one status code covers apart, as the command line's exit codes do."""
_KIND_MODULES = {domain.__name__: "catalog", oci.__name__: "oci"}


def error_kind(exc: BaseException) -> tuple[tuple[str, str], ...]:
    """The :data:`KIND_KEY` metadata of ``exc``: its nearest class in ``catalog.errors`` or
    ``catalog.oci.errors``; nothing for anything else."""
    for cls in type(exc).__mro__:
        module = _KIND_MODULES.get(cls.__module__)
        if module is not None:
            return ((KIND_KEY, f"{module}.{cls.__name__}"),)
    return ()


async def _abort(context: Context, exc: Exception, method: str) -> NoReturn:
    set_code = context.code()
    if set_code is not None and set_code != Code.OK:
        # The servicer chose a code and then raised (the generated base classes do this for
        # unimplemented methods): keep its code and details, like grpc does.
        await context.abort(set_code, context.details() or "")
    code, details = status_for(exc, method)
    await context.abort(
        code, details, trailing_metadata=error_kind(exc) if code != Code.INTERNAL else ()
    )


class MalformedRequest:
    """What the wrapped deserializer returns for bytes that are not the request message."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    parse = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # DecodeError, and whatever else the bytes make the parser raise
            return MalformedRequest(f"{type(exc).__name__}: {exc}"[:200])

    return deserialize


async def _refuse_malformed(request: Any, context: Context) -> None:
    if isinstance(request, MalformedRequest):
        await context.abort(
            Code.INVALID_ARGUMENT, f"the request is not a valid message ({request.reason})"
        )


def _unary_response(
    behavior: Callable[..., Any], method: str, deadline: float | None
) -> Callable[..., Awaitable[Any]]:
    async def call(request: Any, context: Context) -> Any:
        result = behavior(request, context)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def handler(request: Any, context: Context) -> Any:
        await _refuse_malformed(request, context)
        try:
            if deadline is None:
                return await call(request, context)
            async with asyncio.timeout(deadline):
                return await call(request, context)
        except grpc.aio.AbortError:
            raise
        except TimeoutError:
            logger.warning("%s: stopped at the server deadline of %g s", method, deadline)
            await context.abort(
                Code.DEADLINE_EXCEEDED, f"the server stopped the call after {deadline:g} s"
            )
        except Exception as exc:
            await _abort(context, exc, method)

    return handler


def _stream_response(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(behavior):
        # A coroutine that writes its responses with ``context.write()``.
        async def writer(request: Any, context: Context) -> None:
            await _refuse_malformed(request, context)
            try:
                await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)

        return writer

    async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
        await _refuse_malformed(request, context)
        try:
            async for response in each_response(behavior(request, context)):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, method)

    return generator


def wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    method: str,
    server_deadline: float | None = SERVER_DEADLINE,
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with every exception of its behaviour turned into a status, undecodable
    requests refused, and unary calls stopped after ``server_deadline`` seconds."""
    deserializer = _tolerant(handler.request_deserializer)
    serializer = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _unary_response(handler.unary_unary, method, server_deadline),
            deserializer,
            serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _stream_response(handler.unary_stream, method), deserializer, serializer
        )
    # Streamed requests (reflection's): their messages are parsed as grpc does, since a
    # MalformedRequest inside a request iterator would reach the servicer.
    deserializer = handler.request_deserializer
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _unary_response(handler.stream_unary, method, None), deserializer, serializer
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _stream_response(handler.stream_stream, method), deserializer, serializer
        )
    return handler


class ErrorMappingInterceptor(WrappingInterceptor):
    """Applies :func:`wrap_handler` to every method of every service on the server."""

    def __init__(self, server_deadline: float | None = SERVER_DEADLINE) -> None:
        super().__init__()
        self.server_deadline = server_deadline

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return wrap_handler(handler, method, self.server_deadline)
