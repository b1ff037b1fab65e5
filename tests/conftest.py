"""Fixtures: real registries (plain, htpasswd, TLS, token), fault proxies, and clients."""

from __future__ import annotations

import os
import random

# Tests start PostgreSQL, registries and CLIs as child processes while gRPC threads run in this
# one; grpc's fork handlers then ran in a child between fork and exec and crashed it (postgres
# exited -11 after "epoll_wait error: Bad file descriptor"). Nothing here forks to keep using
# gRPC in the child, so the handlers are off; set before anything imports grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from catalog.oci.client import RegistryClient, RegistryOptions
from catalog.oci.credentials import Credentials, CredentialStore, DockerConfig
from catalog.oci.retry import RetryPolicy
from tests.harness.faultproxy import FaultProxy, run_proxy
from tests.harness.postgres import RunningPostgres, run_postgres
from tests.harness.registry import RunningRegistry, run_registry

# CI lays shared/ beside the clone; XREGISTRY_FIXTURES points elsewhere when it is not.
FIXTURES = Path(
    os.environ.get("XREGISTRY_FIXTURES")
    or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
# Retries fast enough for tests, still exponential.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.5)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPostgres]:
    """One PostgreSQL server for the session; tests create their own databases in it."""
    with run_postgres(tmp_path_factory.mktemp("pg")) as pg:
        yield pg


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path) as reg:
        yield reg


@pytest.fixture
def proxy(registry: RunningRegistry) -> Iterator[FaultProxy]:
    with run_proxy(registry.url) as p:
        yield p


@pytest.fixture
def proxied(fresh_registry: RunningRegistry) -> Iterator[FaultProxy]:
    """A fault proxy before a registry of the test's own (its requests counted from none)."""
    with run_proxy(fresh_registry.url) as p:
        yield p


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return random.Random(request.node.name)


def no_docker_config(tmp: Path) -> CredentialStore:
    """A credential store that ignores the machine's ~/.docker/config.json."""
    return CredentialStore(docker_config=DockerConfig(tmp / "no-docker-config.json"))


ClientFactory = Callable[..., RegistryClient]


@pytest.fixture
def registry_transport() -> str:
    """What carries the bytes of ``make_client``'s clients (tests/oci runs both)."""
    return "aiohttp"


@pytest.fixture
async def make_client(tmp_path: Path, registry_transport: str) -> AsyncIterator[ClientFactory]:
    made: list[RegistryClient] = []

    def make(
        host: str,
        *,
        credentials: Credentials | None = None,
        store: CredentialStore | None = None,
        **options: object,
    ) -> RegistryClient:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("transport", registry_transport)
        client = RegistryClient(
            host,
            RegistryOptions(credentials=credentials, **options),  # type: ignore[arg-type]
            store or no_docker_config(tmp_path),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
