"""The one mapping of domain errors to status codes, through a real channel."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest

from catalog import errors as domain
from catalog.api.errors import STATUS_CODES, status_code_for
from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.oci import errors as oci
from tests.api.conftest import Serve

Code = grpc.StatusCode
Context = grpc.aio.ServicerContext[Any, Any]
URL = "https://registry.acme.io/v2/shop/api/manifests/1.4"

# name → (exception a servicer raises, expected code)
CASES: dict[str, tuple[Exception, grpc.StatusCode]] = {
    "not-found": (domain.NotFound("registry registries/acme not found"), Code.NOT_FOUND),
    "exists": (domain.AlreadyExists("registry registries/acme exists"), Code.ALREADY_EXISTS),
    "invalid": (domain.InvalidArgument("page_size must not be negative"), Code.INVALID_ARGUMENT),
    "precondition": (domain.FailedPrecondition("already indexing"), Code.FAILED_PRECONDITION),
    "config": (domain.ConfigError("no such file: rules.yaml"), Code.FAILED_PRECONDITION),
    "format": (domain.FormatError("not an SPDX document"), Code.FAILED_PRECONDITION),
    "reference": (oci.InvalidReference("invalid reference 'UPPER'"), Code.INVALID_ARGUMENT),
    "digest": (oci.InvalidDigest("invalid digest 'sha256:xyz'"), Code.INVALID_ARGUMENT),
    "mismatch": (
        oci.DigestMismatch("sha256:aa", "sha256:bb", "manifest"),
        Code.FAILED_PRECONDITION,
    ),
    "size": (oci.SizeMismatch(10, 12), Code.FAILED_PRECONDITION),
    "too-large": (oci.ManifestTooLarge(4 << 20), Code.FAILED_PRECONDITION),
    "manifest": (oci.InvalidManifest("manifest is not JSON"), Code.FAILED_PRECONDITION),
    "media-type": (oci.UnsupportedMediaType("schema 1"), Code.FAILED_PRECONDITION),
    "layout": (oci.LayoutError("no index.json in /srv/layout"), Code.FAILED_PRECONDITION),
    "auth": (oci.AuthError("no credentials in env:ACME_TOKEN"), Code.PERMISSION_DENIED),
    "unauthorized": (
        oci.Unauthorized("authentication required", status=401, url=URL),
        Code.PERMISSION_DENIED,
    ),
    "denied": (
        oci.Denied("requested access is denied", status=403, url=URL),
        Code.PERMISSION_DENIED,
    ),
    "oci-not-found": (oci.ManifestUnknown("manifest unknown", status=404, url=URL), Code.NOT_FOUND),
    "unavailable": (oci.RegistryUnavailable("connection refused", url=URL), Code.UNAVAILABLE),
    "throttled": (oci.TooManyRequests("slow down", status=429), Code.UNAVAILABLE),
    "rejected": (oci.Rejected("blob unknown to registry", status=400), Code.FAILED_PRECONDITION),
    "unsupported": (oci.Unsupported("no referrers API", status=404), Code.FAILED_PRECONDITION),
    "registry": (oci.RegistryError("teapot", status=418, code="TEAPOT"), Code.UNKNOWN),
}
SECRET = "hunter2"


def error_for(name: str) -> Exception:
    if name == "bug":
        return RuntimeError(f"password={SECRET} at /srv/xregistry/secret.txt")
    return CASES[name][0]


def progress(phase: catalog_pb2.IndexPhase.ValueType) -> catalog_pb2.IndexRegistryResponse:
    return catalog_pb2.IndexRegistryResponse(progress=catalog_pb2.IndexProgress(phase=phase))


class Raising(catalog_pb2_grpc.CatalogServiceServicer):
    """Raises the error named by the request, after one message on the stream."""

    async def GetRegistry(
        self, request: catalog_pb2.GetRegistryRequest, context: Context
    ) -> catalog_pb2.GetRegistryResponse:
        raise error_for(request.name)

    async def IndexRegistry(
        self, request: catalog_pb2.IndexRegistryRequest, context: Context
    ) -> AsyncIterator[catalog_pb2.IndexRegistryResponse]:
        yield progress(catalog_pb2.INDEX_PHASE_LISTING_REPOSITORIES)
        raise error_for(request.name)

    async def ListRegistries(
        self, request: catalog_pb2.ListRegistriesRequest, context: Context
    ) -> catalog_pb2.ListRegistriesResponse:
        await context.abort(Code.RESOURCE_EXHAUSTED, "slow down")


class SyncRaising(catalog_pb2_grpc.CatalogServiceServicer):
    """Plain functions and generators: the mapping covers them too."""

    def GetRegistry(
        self, request: catalog_pb2.GetRegistryRequest, context: Context
    ) -> catalog_pb2.GetRegistryResponse:
        raise error_for(request.name)

    def IndexRegistry(
        self, request: catalog_pb2.IndexRegistryRequest, context: Context
    ) -> Iterator[catalog_pb2.IndexRegistryResponse]:
        yield progress(catalog_pb2.INDEX_PHASE_LISTING_REPOSITORIES)
        raise error_for(request.name)


class WritingRaising(catalog_pb2_grpc.CatalogServiceServicer):
    """A streaming method written as a coroutine with ``context.write()``."""

    async def IndexRegistry(  # type: ignore[override]
        self, request: catalog_pb2.IndexRegistryRequest, context: Context
    ) -> None:
        await context.write(progress(catalog_pb2.INDEX_PHASE_LISTING_REPOSITORIES))
        raise error_for(request.name)


SERVICERS = [Raising, SyncRaising, WritingRaising]


async def unary_error(channel: grpc.aio.Channel, name: str) -> grpc.aio.AioRpcError:
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetRegistry(catalog_pb2.GetRegistryRequest(name=name))
    return err.value


async def stream_error(
    channel: grpc.aio.Channel, name: str
) -> tuple[list[catalog_pb2.IndexRegistryResponse], grpc.aio.AioRpcError]:
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    received: list[catalog_pb2.IndexRegistryResponse] = []
    call = stub.IndexRegistry(catalog_pb2.IndexRegistryRequest(name=name))
    try:
        async for response in call:
            received.append(response)
    except grpc.aio.AioRpcError as err:
        return received, err
    raise AssertionError(f"{name}: the stream ended without an error")


async def test_unary_and_streaming_methods_map_every_domain_error(serve: Serve) -> None:
    async with serve(Raising) as (_, channel):
        for name, (exc, code) in CASES.items():
            err = await unary_error(channel, name)
            assert (err.code(), err.details()) == (code, str(exc)), name
            received, err = await stream_error(channel, name)
            assert (err.code(), err.details()) == (code, str(exc)), name
            assert len(received) == 1, name  # what was sent before the error arrives


@pytest.mark.parametrize("servicer", SERVICERS, ids=lambda cls: cls.__name__)
async def test_every_handler_style_is_covered(serve: Serve, servicer: type[Any]) -> None:
    async with serve(servicer) as (_, channel):
        if "GetRegistry" in vars(servicer):
            err = await unary_error(channel, "not-found")
            assert err.code() == Code.NOT_FOUND
            assert err.details() == "registry registries/acme not found"
        received, err = await stream_error(channel, "unavailable")
        assert err.code() == Code.UNAVAILABLE
        assert err.details() == f"UNAVAILABLE: connection refused ({URL})"
        assert [r.progress.phase for r in received] == [
            catalog_pb2.INDEX_PHASE_LISTING_REPOSITORIES
        ]


async def test_bugs_are_internal_and_leak_nothing(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="catalog.api.errors")
    async with serve(Raising) as (_, channel):
        unary = await unary_error(channel, "bug")
        _, streaming = await stream_error(channel, "bug")
    for err in (unary, streaming):
        assert err.code() == Code.INTERNAL
        details = err.details() or ""
        assert re.fullmatch(r"internal error \(incident [0-9a-f]{12}\)", details)
        assert SECRET not in details
        assert "RuntimeError" not in details
        assert "Traceback" not in (err.debug_error_string() or "")
    # The operators' side: each incident id is logged with the traceback.
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 2
    for err, record in zip((unary, streaming), logged, strict=True):
        incident = (err.details() or "").rsplit(" ", 1)[1].rstrip(")")
        assert incident in record.getMessage()
        assert "/xregistry.v1.CatalogService/" in record.getMessage()
        assert record.exc_info is not None
        assert record.exc_info[0] is RuntimeError


async def test_codes_chosen_by_the_servicer_pass_through(serve: Serve) -> None:
    async with serve(Raising) as (_, channel):
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as aborted:
            await stub.ListRegistries(catalog_pb2.ListRegistriesRequest())
        assert (aborted.value.code(), aborted.value.details()) == (
            Code.RESOURCE_EXHAUSTED,
            "slow down",
        )
        # A method the servicer does not implement: the generated base sets UNIMPLEMENTED.
        with pytest.raises(grpc.aio.AioRpcError) as unimplemented:
            await stub.ListTags(catalog_pb2.ListTagsRequest())
        assert unimplemented.value.code() == Code.UNIMPLEMENTED


def test_every_domain_exception_is_mapped() -> None:
    """A new exception class in catalog.errors or catalog.oci.errors needs a line in
    catalog.api.errors.STATUS_CODES; until then it would answer INTERNAL."""
    bases = (domain.CatalogError, oci.OCIError)
    for module in (domain, oci):
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, bases) and value not in bases:
                assert status_code_for(value) is not None, f"{value.__qualname__} is not mapped"
    assert status_code_for(ValueError) is None
    assert status_code_for(KeyError) is None
    # Subclasses come before their bases, or they would never match.
    for i, (cls, _) in enumerate(STATUS_CODES):
        for earlier, _ in STATUS_CODES[:i]:
            assert not issubclass(cls, earlier) or cls is earlier, (cls, earlier)
