"""The permission table against what the server serves, and the whole role-by-method matrix over
real channels to the real `serve` process.

Every method of every service is enumerated from the generated descriptors (and the services
from the server's own reflection): a method without a permission entry fails here, so a new RPC
cannot ship open. The expected matrix is derived from the roles' definitions by method name,
not from the table, so the two check each other.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

import catalog.api.v1
from catalog.api.access import METHODS
from catalog.app.auth_config import AuthSettings, Binding, Role, StaticToken
from catalog.app.config import ServeConfig
from catalog.daemon import Server
from tests.api.access.conftest import bearer, sha256

ROLES = ("viewer", "gate", "operator", "notifier", "metrics", "admin")


def served_services() -> Iterator[Any]:  # the upb descriptors' stubs differ from the API's
    for module in pkgutil.iter_modules(catalog.api.v1.__path__):
        if module.name.endswith("_pb2"):
            generated = importlib.import_module(f"catalog.api.v1.{module.name}")
            yield from generated.DESCRIPTOR.services_by_name.values()
    yield health_pb2.DESCRIPTOR.services_by_name["Health"]
    yield reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]


def all_methods() -> dict[str, MethodDescriptor]:
    return {
        f"/{service.full_name}/{method.name}": method
        for service in served_services()
        for method in service.methods
    }


def test_every_method_has_a_permission_and_every_entry_a_method() -> None:
    methods = set(all_methods())
    assert len(methods) >= 29
    assert sorted(methods - set(METHODS)) == [], "methods without a permission entry"
    assert sorted(set(METHODS) - methods) == [], "entries for methods that do not exist"


def expected(role: str | None, path: str) -> bool:
    """The roles as the design defines them, by method name."""
    service, name = path.strip("/").split("/")
    if service == "grpc.health.v1.Health":
        return True
    reader = service.startswith("grpc.reflection.") or name.startswith(
        ("Get", "List", "Resolve", "Search", "Watch")
    )
    return {
        None: False,
        "nobody": False,
        "viewer": reader,
        "gate": name == "CheckImage",
        "operator": reader or name in ("IndexRegistry", "RunRule", "EvaluateCatalog"),
        "notifier": False,  # registries' push notifications: an HTTP route, no RPC
        "metrics": False,  # Prometheus scrapers: GET /metrics, no RPC
        "admin": True,
    }[role]


def config(tmp_path: Path) -> ServeConfig:
    tokens = {role: f"token-for-{role}-{tmp_path.name}" for role in (*ROLES, "nobody")}
    return ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        auth=AuthSettings(
            tokens=[StaticToken(name=role, sha256=sha256(token)) for role, token in tokens.items()],
            bindings=[Binding(role=Role(role), principals=[f"token:{role}"]) for role in ROLES],
        ),
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    service = Server(config(tmp_path))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def call(
    channel: grpc.aio.Channel, path: str, method: MethodDescriptor, token: str | None
) -> grpc.StatusCode:
    """Calls ``path`` with an empty request (a reflection listing for reflection); the status,
    or OK once a first streamed response arrived."""
    request_type = GetMessageClass(method.input_type)
    response_type = GetMessageClass(method.output_type)
    request: Any = request_type()
    if method.containing_service.name == "ServerReflection":
        request = reflection_pb2.ServerReflectionRequest(list_services="")
    kwargs: dict[str, Any] = {
        "request_serializer": request_type.SerializeToString,
        "response_deserializer": response_type.FromString,
    }
    metadata = bearer(token) if token else None
    try:
        if not method.server_streaming:
            unary = channel.unary_unary(path, **kwargs)
            await unary(request, metadata=metadata, timeout=20)
            return grpc.StatusCode.OK
        streaming: Any = (
            channel.stream_stream(path, **kwargs)(iter([request]), metadata=metadata, timeout=20)
            if method.client_streaming
            else channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=20)
        )
        await streaming.read()
        streaming.cancel()
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.PERMISSION_DENIED and "may not call" in (
            error.details() or ""
        ):
            return grpc.StatusCode.PERMISSION_DENIED
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return error.code()
        # Past the access check: the servicer answered (grpc's Health.List is UNIMPLEMENTED).
        return grpc.StatusCode.OK


async def test_the_role_by_method_matrix(server: Server, tmp_path: Path) -> None:
    tokens = {role: f"token-for-{role}-{tmp_path.name}" for role in (*ROLES, "nobody")}
    methods = all_methods()
    problems = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for role in (None, "nobody", *ROLES):
            token = tokens[role] if role else None
            for path, method in sorted(methods.items()):
                got = await call(channel, path, method, token)
                if expected(role, path):
                    want = grpc.StatusCode.OK
                else:
                    want = (
                        grpc.StatusCode.UNAUTHENTICATED
                        if role is None
                        else grpc.StatusCode.PERMISSION_DENIED
                    )
                if got != want:
                    problems.append(f"{role}: {path}: {got.name}, expected {want.name}")
        assert problems == []
        # Reflection lists exactly the services enumerated above: none is served unchecked.
        listing = await reflection(channel, tokens["viewer"])
        assert listing == {s.full_name for s in served_services()}


async def reflection(channel: grpc.aio.Channel, token: str) -> set[str]:
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = info(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=bearer(token)
    )
    names = set()
    async for response in responses:
        names |= {s.name for s in response.list_services_response.service}
    return names
