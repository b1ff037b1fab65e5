"""Server assembly through a real channel: health, reflection, the generated package."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import grpc
import grpc.aio
import pytest
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from tests.api.conftest import Serve

CATALOG = "xregistry.v1.CatalogService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# Called by method path, as grpcurl does (the typeshed stubs of these services are untyped).
def health_check(
    channel: grpc.aio.Channel,
) -> grpc.aio.UnaryUnaryMultiCallable[
    health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
]:
    return channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )


def health_watch(
    channel: grpc.aio.Channel,
) -> grpc.aio.UnaryStreamMultiCallable[
    health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
]:
    return channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )


async def reflect(
    channel: grpc.aio.Channel, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    info: grpc.aio.StreamStreamMultiCallable[
        reflection_pb2.ServerReflectionRequest, reflection_pb2.ServerReflectionResponse
    ] = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return [response async for response in info(iter(requests))]


async def test_health_is_serving_for_the_server_and_each_service(serve: Serve) -> None:
    async with serve(catalog_pb2_grpc.CatalogServiceServicer) as (_, channel):
        check = health_check(channel)
        for service in ("", CATALOG):
            response = await check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == SERVING, service
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await check(health_pb2.HealthCheckRequest(service="xregistry.v1.Nope"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_turns_not_serving_when_the_server_stops(serve: Serve) -> None:
    async with serve(catalog_pb2_grpc.CatalogServiceServicer) as (server, channel):
        watch = health_watch(channel)(health_pb2.HealthCheckRequest(service=CATALOG))
        first = await watch.read()
        assert isinstance(first, health_pb2.HealthCheckResponse)
        assert first.status == SERVING
        stopping = asyncio.create_task(server.stop(grace=0.5))
        second = await asyncio.wait_for(watch.read(), 5)
        assert isinstance(second, health_pb2.HealthCheckResponse)
        assert second.status == NOT_SERVING
        await stopping


async def test_reflection_lists_and_describes_the_catalog_service(serve: Serve) -> None:
    async with serve(catalog_pb2_grpc.CatalogServiceServicer) as (_, channel):
        (listed,) = await reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
        names = {s.name for s in listed.list_services_response.service}
        assert names == {
            CATALOG,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }

        (described,) = await reflect(
            channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=CATALOG)
        )
        files = {}
        for raw in described.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[proto.name] = proto
        # What grpcurl and buf curl need: the file under its proto path, with its dependencies.
        assert set(files) == {
            "xregistry/v1/catalog.proto",
            "google/protobuf/timestamp.proto",
            "google/api/field_behavior.proto",
            "google/protobuf/descriptor.proto",
        }
        # Field behaviour is in the descriptors, not only in comments.
        catalog = files["xregistry/v1/catalog.proto"]
        (registry,) = [m for m in catalog.message_type if m.name == "Registry"]
        # The googleapis stubs type the extension as a plain FieldDescriptor.
        extension: Any = field_behavior_pb2.field_behavior
        behaviour: dict[str, list[int]] = {
            f.name: list(f.options.Extensions[extension]) for f in registry.field
        }
        assert behaviour["name"] == [field_behavior_pb2.IDENTIFIER]
        assert behaviour["host"] == [field_behavior_pb2.REQUIRED, field_behavior_pb2.IMMUTABLE]
        assert behaviour["last_index_status"] == [field_behavior_pb2.OUTPUT_ONLY]
        (service,) = files["xregistry/v1/catalog.proto"].service
        methods = {m.name: m for m in service.method}
        assert set(methods) == set(
            catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].methods_by_name
        )
        assert methods["IndexRegistry"].server_streaming
        assert methods["GetArtifact"].output_type == ".xregistry.v1.GetArtifactResponse"


def test_generated_code_lives_in_catalog_api_v1() -> None:
    assert catalog_pb2.DESCRIPTOR.name == "xregistry/v1/catalog.proto"
    assert catalog_pb2.DESCRIPTOR.package == "xregistry.v1"
    assert catalog_pb2.Registry.__module__ == "catalog.api.v1.catalog_pb2"
    registry = catalog_pb2.Registry(name="registries/acme", host="registry.acme.io")
    assert pickle.loads(pickle.dumps(registry)) == registry
