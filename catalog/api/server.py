"""Assembles the gRPC server: the given services, health checking, reflection, error mapping.

    server = build_server("0.0.0.0:50051", [catalog_service(CatalogServicer(...))])
    async with server:                      # start(); stop() on the way out
        await server.wait_for_termination()

- Health (``grpc.health.v1.Health``): SERVING for the whole server (``""``) and for each service
  once started; NOT_SERVING for all of them as soon as :meth:`ApiServer.stop` begins, so load
  balancers drain the replica during the grace period; the daemon's readiness conditions
  (:class:`catalog.daemon.readiness.Conditions`, through :attr:`ApiServer.health`) turn the
  server and some services NOT_SERVING while they cannot work (the database away, the decision
  log unwritable).
- Reflection (``grpc.reflection.v1alpha``): ``grpcurl`` and ``buf curl`` list and call the services
  without the protos.
- :class:`~catalog.api.errors.ErrorMappingInterceptor` comes first (after
  :class:`~catalog.api.observe.ObservingInterceptor`, which counts every call's final code), so
  domain exceptions raised by servicers, and by any interceptor passed in, become status codes.
- Message limits: a request over :data:`MAX_RECEIVE` bytes is refused by grpc with
  RESOURCE_EXHAUSTED before it is parsed, and no response over :data:`MAX_SEND` bytes is sent
  (stored fields are capped so that a full page of any list stays under it).
- Unary calls stop after ``server_deadline`` seconds (DEADLINE_EXCEEDED) even when the client set
  no deadline; see :mod:`catalog.api.errors`.
- One server per port: ``SO_REUSEPORT`` is off (grpc turns it on by default, and then a second
  server on the port shares its connections), so a taken port is :class:`CannotListen`.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from catalog.api.errors import SERVER_DEADLINE, ErrorMappingInterceptor
from catalog.api.observe import ObservingInterceptor
from catalog.api.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    gate_pb2,
    gate_pb2_grpc,
    replication_pb2,
    replication_pb2_grpc,
)
from catalog.app.tls_config import split_address
from catalog.errors import CatalogError

S = TypeVar("S")

MAX_RECEIVE = 4 << 20
"""Bytes of one request message; grpc's own default, said here so that it is a decision."""
MAX_SEND = 4 << 20
"""Bytes of one response message (grpc sends any size by default)."""


class CannotListen(CatalogError):
    """The listen address is taken or cannot be bound."""


@dataclass(frozen=True, slots=True)
class ServiceBinding(Generic[S]):
    """A servicer together with its service's descriptor and generated ``add_…_to_server``."""

    descriptor: ServiceDescriptor
    servicer: S
    add_to_server: Callable[[S, grpc.aio.Server], None]

    @property
    def name(self) -> str:
        """The full service name: ``xregistry.v1.CatalogService``."""
        return self.descriptor.full_name


def catalog_service(servicer: catalog_pb2_grpc.CatalogServiceServicer) -> ServiceBinding[Any]:
    return ServiceBinding(
        catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"],
        servicer,
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server,
    )


def gate_service(servicer: gate_pb2_grpc.GateServiceServicer) -> ServiceBinding[Any]:
    return ServiceBinding(
        gate_pb2.DESCRIPTOR.services_by_name["GateService"],
        servicer,
        gate_pb2_grpc.add_GateServiceServicer_to_server,
    )


def replication_service(
    servicer: replication_pb2_grpc.ReplicationServiceServicer,
) -> ServiceBinding[Any]:
    return ServiceBinding(
        replication_pb2.DESCRIPTOR.services_by_name["ReplicationService"],
        servicer,
        replication_pb2_grpc.add_ReplicationServiceServicer_to_server,
    )


class ApiServer:
    """A built server: bound to its port, not started yet."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        health_servicer: health.aio.HealthServicer,
        service_names: Sequence[str],
    ) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer
        self.service_names = tuple(service_names)
        self._probes: grpc.aio.Server | None = None

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def serve_health_on(self, address: str) -> int:
        """Also answer the health service (only it) in plain text on ``address`` — for probes
        that speak no TLS, such as Kubernetes' ``grpc`` probes. The same statuses as the main
        port; nothing else is reachable there. Returns the port."""
        ensure_free(address)
        probes = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, probes)
        try:
            port = probes.add_insecure_port(address)
        except RuntimeError:
            port = 0
        if port == 0:
            raise CannotListen(f"health: cannot listen on {address}")
        await probes.start()
        self._probes = probes
        return port

    async def stop(self, grace: float | None = 5.0) -> None:
        """Report NOT_SERVING, then let running calls finish for up to ``grace`` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self._probes is not None:
            await self._probes.stop(grace)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def build_server(
    address: str,
    services: Sequence[ServiceBinding[Any]],
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    credentials: grpc.ServerCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
    server_deadline: float | None = SERVER_DEADLINE,
) -> ApiServer:
    """A server for ``services`` listening on ``address`` (``host:port``; port 0 picks one).

    Plain HTTP/2 unless ``credentials`` (``grpc.ssl_server_credentials(…)``) are given;
    ``options`` come after the defaults (message limits included), so they can change them.
    """
    ensure_free(address)
    server = grpc.aio.server(
        interceptors=[
            ObservingInterceptor(),
            ErrorMappingInterceptor(server_deadline),
            *interceptors,
        ],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_RECEIVE),
            ("grpc.max_send_message_length", MAX_SEND),
            *options,
        ],
    )
    for service in services:
        service.add_to_server(service.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [service.name for service in services]
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection([*names, health_name, reflection.SERVICE_NAME], server)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpc says "Failed to bind", and logs why
        port = 0
    if port == 0:
        raise CannotListen(f"cannot listen on {address}")
    return ApiServer(server, port, health_servicer, names)


def ensure_free(address: str) -> None:
    """:class:`CannotListen` when ``address`` is taken, said plainly before grpc tries (and
    logs its own lines), and callable before anything else is set up.

    grpc's bind (``SO_REUSEPORT`` off) still decides; this only words the common case.
    """
    host, port = split_address(address)
    if not port:
        return
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return  # grpc reports names it cannot resolve
    for family, kind, proto, _, where in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
            try:
                probe.bind(where)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CannotListen(
                        f"cannot listen on {address}: the address is in use "
                        "(is another xregistry serve running?)"
                    ) from None
