"""Who may scrape: with `auth`, a token whose role holds the `metrics` permission; without, the
listener stays on loopback unless TLS and auth are configured or the insecure words are said."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import grpc
import grpc.aio
import pytest

from catalog.api.access import Access
from catalog.api.observe import request_id
from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.app.auth_config import AuthSettings, Binding, Role, StaticToken
from catalog.app.config import ServeConfig, load_config
from catalog.app.ops_config import MetricsSettings
from catalog.app.tls_config import INSECURE_SERVE_WORDS
from catalog.daemon import Server
from catalog.daemon.observability import MetricsExport
from catalog.errors import ConfigError
from tests.api.access.conftest import sha256
from tests.api.peer import make_pki
from tests.ops.scraping import get, moved, scrape

TOKENS = {"scraper": "scrape-token-1", "ci": "gate-token-2", "viewer": "viewer-token-3"}


def authenticated(tmp_path: Path) -> ServeConfig:
    return ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        auth=AuthSettings(
            tokens=[StaticToken(name=n, sha256=sha256(t)) for n, t in TOKENS.items()],
            bindings=[
                Binding(role=Role.METRICS, principals=["token:scraper"]),
                Binding(role=Role.GATE, principals=["token:ci"]),
                Binding(role=Role.VIEWER, principals=["token:viewer"]),
            ],
        ),
        metrics=MetricsSettings(listen="127.0.0.1:0"),
    )


async def test_scraping_needs_a_token_with_the_metrics_permission(tmp_path: Path) -> None:
    service = Server(authenticated(tmp_path))
    await service.start()
    try:
        assert service.metrics.listener is not None
        port = service.metrics.listener.port
        status, text = await get(port)
        assert status == 401
        assert "xregistry_" not in text
        status, text = await get(port, "not-a-configured-token")
        assert status == 401
        assert "not-a-configured-token" not in text
        status, text = await get(port, TOKENS["ci"])  # the gate role may not scrape
        assert status == 403
        assert "xregistry_" not in text
        for who in ("scraper", "viewer"):
            samples = await scrape(port, TOKENS[who])
            assert ("xregistry_decision_log_write_failures_total", frozenset()) in samples
        # A gRPC call refused by authentication is counted with the code its caller got.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListRegistries(catalog_pb2.ListRegistriesRequest())
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        method = "/xregistry.v1.CatalogService/ListRegistries"
        handled = "xregistry_grpc_handled_total"
        # Counted as the call ends on the server, which may be just after its caller has the
        # status (seen under load): a few scrapes, not one.
        for _ in range(50):
            after = await scrape(port, TOKENS["scraper"])
            if moved(samples, after, handled, method=method, code="UNAUTHENTICATED"):
                break
            await asyncio.sleep(0.1)
        assert moved(samples, after, handled, method=method, code="UNAUTHENTICATED") == 1
    finally:
        await service.stop()


def exposed(tmp_path: Path, **fields: object) -> ServeConfig:
    return ServeConfig.model_validate(
        {
            "database": f"sqlite:///{tmp_path / 'catalog.db'}",
            "metrics": {"listen": "0.0.0.0:0"},
            **fields,
        }
    )


def test_off_loopback_needs_tls_and_auth_or_the_words(tmp_path: Path) -> None:
    # Checked with the other listeners, before the server touches anything.
    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0:0 .*TLS and auth"):
        Server(exposed(tmp_path))
    # The NetworkPolicy-only mode: said in words, and logged as such.
    consented = exposed(tmp_path, insecure_serve=INSECURE_SERVE_WORDS)
    assert "metrics: listening on 0.0.0.0:0 without TLS or authentication, as insecure_serve" in (
        " ".join(consented.exposure_warnings())
    )
    assert MetricsExport(consented, Access(consented.auth)).listener
    # TLS alone is not enough without auth.
    pki = make_pki(tmp_path)
    tls = {"cert_file": str(pki.server.cert_file), "key_file": str(pki.server.key_file)}
    with pytest.raises(ConfigError, match="without authentication"):
        exposed(tmp_path, metrics={"listen": "0.0.0.0:0", "tls": tls}).exposure_warnings()


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ("metrics: {listen: no-port}", "metrics.listen: 'no-port': a listen address is HOST:PORT"),
        ("metrics: {refresh: soon}", "metrics.refresh: invalid duration 'soon'"),
        ('metrics: {replica: "two words"}', "metrics.replica: String should match pattern"),
        ("log: {level: chatty}", "log.level: Input should be 'DEBUG', 'INFO'"),
        ("log: {format: xml}", "log.format: Input should be 'text' or 'json'"),
    ],
)
def test_bad_ops_settings_are_refused_in_one_line(tmp_path: Path, section: str, says: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(section + "\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_replica_label_defaults_to_the_host_name() -> None:
    assert MetricsSettings().replica == socket.gethostname()


class Metadata:
    """What request_id reads of a call: its invocation metadata."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = pairs

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.pairs


def test_a_request_id_is_the_callers_only_when_it_is_a_short_token() -> None:
    assert request_id(Metadata(("x-request-id", "ci-run-17.step:3"))) == "ci-run-17.step:3"  # type: ignore[arg-type]
    for hostile in ("a b", "x" * 65, "", "id;drop", "é"):
        chosen = request_id(Metadata(("x-request-id", hostile)))  # type: ignore[arg-type]
        assert chosen != hostile
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", chosen)
    assert request_id(Metadata()) != request_id(Metadata())  # type: ignore[arg-type]
