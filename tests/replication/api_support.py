"""A replication API server on a temp SQLite catalog that knows two real registries, with a
worker executing its runs in the test's event loop (for test_api.py and test_cli_rules.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import grpc.aio
from sqlalchemy.orm import Session, sessionmaker

from catalog.api.paging import PageTokens
from catalog.api.replication_servicer import ReplicationServicer
from catalog.api.server import build_server, replication_service
from catalog.api.v1 import replication_pb2_grpc
from catalog.app.catalog_service import CatalogService
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec
from replication.service import ReplicationService
from replication.worker import Worker
from tests.harness.registry import RunningRegistry

if TYPE_CHECKING:
    Stub = replication_pb2_grpc.ReplicationServiceAsyncStub


@dataclass
class Registries:
    source: RunningRegistry
    destination: RunningRegistry


def catalog_db(url: str, registries: Registries | None = None) -> sessionmaker[Session]:
    """A catalog at ``url``, upgraded; it knows the registries as `src` and `dst` when given."""
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    if registries is not None:
        catalog = CatalogService(sessions)
        for name, registry in (("src", registries.source), ("dst", registries.destination)):
            catalog.add_registry(RegistrySpec(name=name, host=registry.host, insecure=True))
    return sessions


@dataclass
class Served:
    address: str
    stub: Stub
    sessions: sessionmaker[Session]
    registries: Registries
    worker: Worker


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, registries: Registries) -> AsyncIterator[Served]:
    """The service on its own server, and a worker executing its runs in this event loop."""
    sessions = catalog_db(f"sqlite:///{tmp_path / 'served.db'}", registries)
    worker = Worker(sessions, parallel=4, poll=0.2)
    service = ReplicationService(sessions, wake=worker.wake)
    server = build_server(
        "127.0.0.1:0", [replication_service(ReplicationServicer(service, PageTokens.random()))]
    )
    stop = asyncio.Event()
    working = asyncio.create_task(worker.run(stop))
    await server.start()
    address = f"127.0.0.1:{server.port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = replication_pb2_grpc.ReplicationServiceStub(channel)
            yield Served(address, stub, sessions, registries, worker)
    finally:
        await server.stop(grace=None)
        stop.set()
        await working
