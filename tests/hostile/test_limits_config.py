"""The ``limits:`` section of the serve config: values in bounds or refused on one line naming
the key, and what it sets reaches the registry clients, index runs, worker and decision log of a
real server (a catalog over the configured JSON cap is refused at that cap)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from catalog.app.config import ServeConfig, load_config
from catalog.app.limits_config import LimitsSettings
from catalog.daemon import Server
from catalog.errors import ConfigError
from catalog.index.run import INDEX_DEADLINE
from catalog.oci.errors import BadResponse
from catalog.oci.options import RegistryOptions
from catalog.store.registries import RegistrySpec
from replication.worker import TASK_DEADLINE
from tests.hostile.registry_fakes import Request, endless, serve


def load(tmp_path: Path, text: str) -> ServeConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path)


def test_every_limit_is_read_with_its_unit(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
limits:
  registry:
    json_limit: 2MiB
    token_limit: 8192
    request_timeout: 90s
    min_throughput: 1.5KiB
    throughput_window: 1m
    max_pages: 50
  calls_at_once: 16
  index_run: 2h
  replication_task: 1800
  decision_log: {capacity: 500, batch: 50, stalled_after: 2s, retry_first: 50ms, retry_most: 1s}
""",
    )
    limits = config.limits
    options = limits.registry.options()
    assert (options.json_limit, options.token_limit, options.max_pages) == (2 * 2**20, 8192, 50)
    assert (options.request_timeout, options.min_throughput, options.throughput_window) == (
        90.0,
        1536,
        60.0,
    )
    assert options.read_timeout == RegistryOptions().read_timeout  # not set: the default
    assert (limits.index_run, limits.replication_task) == (7200.0, 1800.0)
    assert limits.calls_at_once == 16
    assert limits.decision_log.options() == {
        "capacity": 500,
        "batch": 50,
        "stalled_after": 2.0,
        "retry_delay": (0.05, 1.0),
    }


def test_no_limits_section_keeps_every_default() -> None:
    limits = LimitsSettings()
    assert limits.registry.options() == RegistryOptions()
    assert limits.decision_log.options() == {}
    assert limits.index_run is None
    assert limits.replication_task is None
    assert limits.calls_at_once is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "registry: {json_limit: 1KiB}",
            "limits.registry.json_limit: 1 KiB is outside 64 KiB to 256 MiB",
        ),
        ("registry: {json_limit: lots}", "limits.registry.json_limit: 'lots' is not a size"),
        (
            "registry: {token_limit: 2MiB}",
            "limits.registry.token_limit: 2 MiB is outside 4 KiB to 1 MiB",
        ),
        (
            "registry: {request_timeout: 0s}",
            "limits.registry.request_timeout: 0 s is outside 1 s to 3600 s",
        ),
        (
            "registry: {throughput_window: 2d}",
            "limits.registry.throughput_window: 172800 s is outside",
        ),
        (
            "registry: {max_pages: 0}",
            "limits.registry.max_pages: Input should be greater than or equal to 1",
        ),
        ("registry: {read_limit: 1}", "limits.registry.read_limit: Extra inputs are not permitted"),
        ("index_run: 10s", "limits.index_run: 10 s is outside 60 s to 604800 s"),
        ("calls_at_once: 2", "limits.calls_at_once: Input should be greater than or equal to 4"),
        ("replication_task: soon", "limits.replication_task: 'soon' is not a duration"),
        (
            "decision_log: {capacity: 10}",
            "limits.decision_log.capacity: Input should be greater than or equal to 100",
        ),
        (
            "decision_log: {retry_first: 1s}",
            "limits.decision_log: give retry_first and retry_most together",
        ),
        (
            "decision_log: {retry_first: 5s, retry_most: 1s}",
            "limits.decision_log: retry_most (1 s) is shorter than retry_first (5 s)",
        ),
    ],
)
def test_a_limit_out_of_bounds_is_refused_on_one_line(
    tmp_path: Path, section: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"limits:\n  {section}\n")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_the_server_opens_registries_and_runs_under_its_limits(tmp_path: Path) -> None:
    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await endless(writer, b'{"repositories": [', b'"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ')

    config = load(
        tmp_path,
        f"""
database: sqlite:///{tmp_path / "catalog.db"}
listen: 127.0.0.1:0
limits:
  registry: {{json_limit: 64KiB}}
  index_run: 90s
  replication_task: 5m
  calls_at_once: 12
  decision_log: {{capacity: 300, batch: 20, stalled_after: 1s, retry_first: 10ms, retry_most: 20ms}}
""",
    )
    server = Server(config)
    await server.start()
    try:
        with serve(handle) as fake:
            await asyncio.to_thread(server.catalog.add_registry, RegistrySpec("hostile", fake.host))
            with pytest.raises(BadResponse) as caught:
                await server.catalog.index("hostile")
        assert "larger than the 65536-byte limit" in str(caught.value)
        assert server.catalog.index_deadline == 90.0
        assert server.access_interceptor.slots.at_once == 12
        assert server.worker.task_deadline == 300.0
        assert server.worker.limits is not None
        assert server.worker.limits.json_limit == 65536
        audit = server.gate.audit
        assert (audit.capacity, audit.batch, audit.stalled_after, audit.retry_delay) == (
            300,
            20,
            1.0,
            (0.01, 0.02),
        )
    finally:
        await server.stop()
    # Without the section, everything keeps its default.
    plain = Server(ServeConfig(database=f"sqlite:///{tmp_path / 'plain.db'}", listen="127.0.0.1:0"))
    assert plain.catalog.index_deadline is None  # INDEX_DEADLINE, in index_registry
    assert plain.worker.task_deadline == TASK_DEADLINE
    assert plain.gate.audit.capacity == 20_000
    assert plain.access_interceptor.slots.at_once == 64
    assert INDEX_DEADLINE == 6 * 3600
    plain.engine.dispose()
