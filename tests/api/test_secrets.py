"""Secrets by name only, against a real ``xregistry serve`` over a real gRPC channel: the issue's
exfiltration attempts (``file:/etc/passwd``, an environment variable, a secrets file, a 3 MB
host) are refused with INVALID_ARGUMENT in one line that echoes none of them, nothing is stored,
and a registry the operator allowed the credentials for cannot send them to the token server its
challenge names."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
import pytest
import yaml

from catalog.api import convert
from catalog.api.v1 import catalog_pb2 as pb
from catalog.api.v1 import catalog_pb2_grpc
from catalog.store.queries import RegistryView
from catalog.store.registries import ERROR_MAX, HOST_MAX, SCHEDULE_MAX, IndexStatus
from tests.cli.test_catalog_cli import run
from tests.harness.hostile import HostileRegistry, Recorder, hostile_pair
from tests.harness.serve_process import ServeProcess

PASSWORD = "env-secret-password-1"
FILE_PASSWORD = "file-secret-password-2"
EXAMPLE_LAYOUT = Path(__file__).resolve().parents[2] / "examples" / "slsa-container"


@dataclass
class Served:
    stub: catalog_pb2_grpc.CatalogServiceAsyncStub
    address: str
    hostile: HostileRegistry
    recorder: Recorder
    secret_file: Path


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    secret_file = tmp_path / "mirror.secret"
    secret_file.write_text(f"mirror:{FILE_PASSWORD}")
    monkeypatch.setenv("ROBOT_USER", "robot")
    monkeypatch.setenv("ROBOT_PASS", PASSWORD)
    (tmp_path / "layouts").mkdir()
    async with hostile_pair() as (hostile, recorder):
        config = {
            "database": f"sqlite:///{tmp_path / 'catalog.db'}",
            "secrets": {
                "credentials": [
                    {"name": "robot", "env": "ROBOT_USER:ROBOT_PASS", "hosts": [hostile.host]},
                    {"name": "mirror", "file": str(secret_file), "hosts": ["mirror.test:5000"]},
                ],
                "layouts": [{"name": "layouts", "path": str(tmp_path / "layouts")}],
            },
        }
        path = tmp_path / "serve.yaml"
        path.write_text(yaml.safe_dump(config))
        serve = ServeProcess(path, tmp_path / "serve.log")
        await asyncio.to_thread(serve.start)
        address = f"127.0.0.1:{serve.port}"
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                yield Served(stub, address, hostile, recorder, secret_file)
        finally:
            await asyncio.to_thread(serve.stop)


def attempts(s: Served) -> dict[str, pb.Registry]:
    host = s.hostile.host
    return {
        "file:/etc/passwd": pb.Registry(host=host, credentials_ref="file:/etc/passwd"),
        "an environment variable": pb.Registry(
            host=host, credentials_ref="env:ROBOT_USER:ROBOT_PASS"
        ),
        "a secrets file": pb.Registry(host=host, credentials_ref=f"file:{s.secret_file}"),
        "a bare path": pb.Registry(host=host, credentials_ref=str(s.secret_file)),
        "docker's config": pb.Registry(host=host, credentials_ref="docker-config"),
        "a name not configured": pb.Registry(host=host, credentials_ref="nobody"),
        "robot's name for another host": pb.Registry(host=s.recorder.host, credentials_ref="robot"),
        "mirror's name for another host": pb.Registry(host=host, credentials_ref="mirror"),
        "a CA file path": pb.Registry(host=host, ca_file="/etc/passwd"),
        "a 3 MB host": pb.Registry(host="a" * (3 * 1024 * 1024)),
        "a host beyond the grammar": pb.Registry(host="evil.test/../x"),
        "a layout path": pb.Registry(host="oci:/etc"),
        "a layout below no root": pb.Registry(host="oci:elsewhere/x"),
        "a layout leaving its root": pb.Registry(host="oci:layouts/../../etc"),
        "a 1 MB schedule": pb.Registry(host=host, index_schedule="x" * 1024 * 1024),
    }


async def test_the_exfiltration_attempts_are_refused_over_a_real_channel(served: Served) -> None:
    for i, (what, registry) in enumerate(attempts(served).items()):
        request = pb.CreateRegistryRequest(registry_id=f"attempt-{i}", registry=registry)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.CreateRegistry(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, what
        details = caught.value.details() or ""
        assert "\n" not in details, what
        assert len(details) < 300, what
        for secret in ("/etc", str(served.secret_file), "ROBOT_", PASSWORD, FILE_PASSWORD):
            assert secret not in details, (what, details)
    # Nothing was stored, and the listing is whole.
    listed = await served.stub.ListRegistries(pb.ListRegistriesRequest())
    assert list(listed.registries) == []


async def test_credentials_never_reach_the_realm_a_hostile_registry_names(
    served: Served,
) -> None:
    """The operator bound ``robot`` to the hostile registry's host, so it may be created with
    them; its challenge sends the token request to the recorder, which receives nothing."""
    registry = pb.Registry(host=served.hostile.host, credentials_ref="robot")
    created = await served.stub.CreateRegistry(
        pb.CreateRegistryRequest(registry_id="hostile", registry=registry)
    )
    assert created.registry.credentials_ref == "robot"  # the name, as stored
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in served.stub.IndexRegistry(
            pb.IndexRegistryRequest(name="registries/hostile")
        ):
            pass
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert served.recorder.seen == []
    assert [auth for _, auth in served.hostile.seen] == [None]
    got = await served.stub.GetRegistry(pb.GetRegistryRequest(name="registries/hostile"))
    assert "credentials are not sent there" in got.registry.last_index_error
    assert PASSWORD not in got.registry.last_index_error


async def test_registry_add_with_server_refuses_in_one_line_and_exit_2(served: Served) -> None:
    for args in (
        ["--credentials", "file:/etc/passwd"],
        ["--credentials", "env:ROBOT_USER:ROBOT_PASS"],
        ["--ca", str(served.secret_file)],
    ):
        done = await asyncio.to_thread(
            run, "registry", "add", "x", served.hostile.host, *args, server=served.address
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert "/etc" not in done.stderr
        assert str(served.secret_file) not in done.stderr
    long_host = "h" * 100_000  # an argument of the command line is at most 128 KiB
    done = await asyncio.to_thread(run, "registry", "add", "x", long_host, server=served.address)
    assert done.returncode == 2
    assert "at most 255 characters, not 100000" in done.stderr
    # With a name the server defines, for its host, the same command works.
    done = await asyncio.to_thread(
        run,
        "registry",
        "add",
        "x",
        served.hostile.host,
        "--credentials",
        "robot",
        server=served.address,
    )
    assert done.returncode == 0, done.stderr


async def test_a_layout_below_a_named_root_is_indexed(served: Served, tmp_path: Path) -> None:
    await asyncio.to_thread(shutil.copytree, EXAMPLE_LAYOUT, tmp_path / "layouts" / "slsa")
    registry = pb.Registry(host="oci:layouts/slsa")
    await served.stub.CreateRegistry(
        pb.CreateRegistryRequest(registry_id="slsa", registry=registry)
    )
    final = [
        r async for r in served.stub.IndexRegistry(pb.IndexRegistryRequest(name="registries/slsa"))
    ]
    assert final[-1].progress.done
    assert final[-1].progress.manifests_fetched > 0
    assert final[-1].progress.errors == 0


def test_a_page_of_registries_at_every_cap_fits_a_grpc_message() -> None:
    """Nothing a caller may store can break ``registry list``: 1000 registries (a page) with
    every field at its cap stay under gRPC's 4 MiB."""
    now = datetime.now(UTC)
    view = RegistryView(
        name="r" * 63,
        host="h" * HOST_MAX,
        insecure=True,
        ca_file="c" * 63,
        credentials_ref="k" * 63,
        repositories=[],
        index_schedule="s" * SCHEDULE_MAX,
        last_index_at=now,
        last_index_status=IndexStatus.FAILED,
        last_index_started_at=now,
        last_index_error="e" * ERROR_MAX,
        last_index_errors=2**31,
    )
    page = pb.ListRegistriesResponse(
        registries=[convert.registry(view)] * 1000, next_page_token="t" * 4096
    )
    assert page.ByteSize() < 4 * 1024 * 1024
