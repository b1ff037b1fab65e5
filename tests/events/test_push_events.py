"""Registry push events, end to end: a real `docker-registry` notifying a real server, which
indexes exactly the repository pushed to and starts the rules that follow index events — no
schedule involved; bursts coalesce; a wrong secret indexes nothing; a server that was down
catches up by schedule; hostile deliveries get one-line refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from catalog.app.audit_service import AuditService
from catalog.app.auth_config import AuthSettings, Binding, Role, StaticToken
from catalog.app.config import RegistryConfig, ReplicationSettings, ServeConfig
from catalog.app.events_config import EventsSettings
from catalog.daemon import Server
from catalog.errors import ConfigError, NotFound
from catalog.store.audit import AuditFilter, AuditKind
from replication.spec import RuleSpec
from tests.harness.images import build_image
from tests.harness.ports import free_port
from tests.harness.registry import RunningRegistry, run_registry
from tests.replication.conftest import digest_of, push_to

NOTIFIER_TOKEN = "registry-notifies-" + "x" * 16
PATH = "/events/distribution/src"


def notifying(url: str, token: str) -> dict[str, Any]:
    """Distribution's `notifications` section, as an operator writes it."""
    return {
        "notifications": {
            "endpoints": [
                {
                    "name": "xregistry",
                    "url": url,
                    "headers": {"Authorization": [f"Bearer {token}"]},
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "1s",
                    "ignoredmediatypes": ["application/octet-stream"],
                }
            ]
        }
    }


@contextmanager
def notifying_registry(
    tmp_path: Path, events_port: int, token: str = NOTIFIER_TOKEN
) -> Iterator[RunningRegistry]:
    url = f"http://127.0.0.1:{events_port}{PATH}"
    with run_registry(tmp_path, extra=notifying(url, token)) as registry:
        yield registry


def serve_config(
    tmp_path: Path,
    events_port: int,
    source: str,
    destination: str | None = None,
    *,
    index: dict[str, str] | None = None,
    repositories: tuple[str, ...] = (),
) -> ServeConfig:
    registries = [
        RegistryConfig.model_validate(
            {
                "name": "src",
                "host": source,
                "insecure": True,
                "index": index,
                "repositories": list(repositories),
            }
        )
    ]
    rules = []
    if destination is not None:
        registries.append(RegistryConfig(name="dst", host=destination, insecure=True))
        rules.append(
            RuleSpec(name="follow", source="src", destination="dst", prefix="m", on_index=True)
        )
    return ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=registries,
        replication=ReplicationSettings(poll="1s", rules=rules),
        auth=AuthSettings(
            tokens=[
                StaticToken(
                    name="registry", sha256=hashlib.sha256(NOTIFIER_TOKEN.encode()).hexdigest()
                )
            ],
            bindings=[Binding(role=Role.NOTIFIER, principals=["token:registry"])],
        ),
        events=EventsSettings(listen=f"127.0.0.1:{events_port}", settle=0.1),
    )


@asynccontextmanager
async def running(config: ServeConfig) -> AsyncIterator[Server]:
    service = Server(config)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def tags_of(service: Server, repository: str) -> dict[str, str]:
    try:
        page = service.catalog.list_tags("src", repository, size=1000)
    except NotFound:
        return {}
    return {t.name: t.digest for t in page.items}


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> float:
    """Seconds until ``check`` held (polled every 50 ms); fails after ``seconds``."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


async def test_a_push_is_indexed_and_replicated_without_a_schedule(
    tmp_path: Path, rng: random.Random
) -> None:
    port = free_port()
    with notifying_registry(tmp_path, port) as source, run_registry(tmp_path) as destination:
        config = serve_config(tmp_path, port, source.host, destination.host)
        async with running(config) as service:
            image = build_image(rng, layers=1)
            await push_to(source.host, "shop/api", image, "1.0")

            async def indexed() -> bool:
                tags = await asyncio.to_thread(tags_of, service, "shop/api")
                return tags.get("1.0") == image.digest

            async def replicated() -> bool:
                return await digest_of(destination.host, "m/shop/api", "1.0") == image.digest

            await eventually(indexed, 10, "push → indexed")
            await eventually(replicated, 15, "push → replicated")
            (run,) = service.replication.list_runs("follow").items
            assert run.trigger == "index"
            # Who did what: the crawl is recorded as the doing of the events' sender.
            audit = AuditService(service.sessions)
            started = audit.list_events(AuditFilter(kind=AuditKind.INDEX_STARTED), 10).items
            assert [(e.principal, e.resource, e.detail) for e in started] == [
                ("token:registry", "registries/src", "push events: 1 repository")
            ]


async def test_a_burst_coalesces_into_few_runs_one_at_a_time(
    tmp_path: Path, rng: random.Random
) -> None:
    port = free_port()
    with notifying_registry(tmp_path, port) as source:
        async with running(serve_config(tmp_path, port, source.host)) as service:
            assert service.push_events is not None
            in_flight, most = 0, 0
            original = service.catalog.index_repositories

            async def counted(name: str, repositories: Any, notifiers: Any = ()) -> Any:
                nonlocal in_flight, most
                in_flight += 1
                most = max(most, in_flight)
                try:
                    return await original(name, repositories, notifiers)
                finally:
                    in_flight -= 1

            service.catalog.index_repositories = counted  # type: ignore[method-assign]
            images = [build_image(rng, layers=1) for _ in range(100)]
            # Ten waves of ten: events keep arriving while runs are going on.
            for wave in range(10):
                await asyncio.gather(
                    *(
                        push_to(source.host, f"burst/r{i % 4}", images[i], f"t{i}")
                        for i in range(wave * 10, wave * 10 + 10)
                    )
                )
                await asyncio.sleep(0.05)

            async def all_indexed() -> bool:
                found = 0
                for r in range(4):
                    found += len(await asyncio.to_thread(tags_of, service, f"burst/r{r}"))
                return found == 100

            await eventually(all_indexed, 60, "100 pushes indexed")
            runs = service.push_events.runs
            assert most == 1  # never two event runs of the registry at once
            assert 1 <= runs <= 40, runs  # coalesced: far fewer runs than pushes
            print(f"100 pushes to 4 repositories: {runs} event runs")


async def test_a_wrong_secret_is_refused_and_nothing_is_indexed(
    tmp_path: Path, rng: random.Random, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="catalog.api.access.http")
    port = free_port()
    with notifying_registry(tmp_path, port, token="not-the-token") as source:
        async with running(serve_config(tmp_path, port, source.host)) as service:
            assert service.push_events is not None
            await push_to(source.host, "shop/api", build_image(rng, layers=1), "1.0")
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"http://127.0.0.1:{port}{PATH}",
                    data=b'{"events": []}',
                    headers={
                        "Authorization": "Bearer not-the-token",
                        "Content-Type": "application/vnd.docker.distribution.events.v1+json",
                    },
                ) as answer,
            ):
                assert answer.status == 401
                assert "not-the-token" not in await answer.text()

            def refused() -> int:
                return sum("unauthenticated" in r.getMessage() for r in caplog.records)

            async def registry_refused() -> bool:
                return refused() >= 2  # ours above, and the registry's delivery

            await eventually(registry_refused, 10, "the registry's delivery refused")
            await asyncio.sleep(1)
            assert tags_of(service, "shop/api") == {}
            assert service.push_events.runs == 0


async def test_pushes_while_the_server_is_down_are_caught_up_by_the_schedule(
    tmp_path: Path, rng: random.Random
) -> None:
    port = free_port()
    with notifying_registry(tmp_path, port) as source:
        image = build_image(rng, layers=1)
        await push_to(source.host, "shop/api", image, "1.0")  # nobody listens: the event is lost
        config = serve_config(tmp_path, port, source.host, index={"interval": "1h"})
        async with running(config) as service:

            async def indexed() -> bool:
                tags = await asyncio.to_thread(tags_of, service, "shop/api")
                return tags.get("1.0") == image.digest

            await eventually(indexed, 20, "the scheduled run at start catches up")


async def post(
    port: int,
    body: bytes,
    *,
    token: str | None = NOTIFIER_TOKEN,
    content_type: str = "application/vnd.docker.distribution.events.v1+json",
    path: str = PATH,
) -> tuple[int, str]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}{path}", data=body, headers=headers) as answer,
    ):
        return answer.status, await answer.text()


def envelope(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def push_event(event_id: str, repository: str, tag: str = "1.0") -> dict[str, Any]:
    return {
        "id": event_id,
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "0" * 64,
            "repository": repository,
            "tag": tag,
        },
    }


async def test_hostile_and_irrelevant_deliveries(tmp_path: Path) -> None:
    port = free_port()
    with run_registry(tmp_path) as source:
        config = serve_config(tmp_path, port, source.host, repositories=("shop/*",))
        async with running(config) as service:
            assert service.push_events is not None
            ok = envelope(push_event("e1", "shop/api"))
            assert await post(port, ok, token=None) == (
                401,
                "credentials required: a bearer token or a client certificate\n",
            )
            status, text = await post(port, ok)
            assert (status, json.loads(text)) == (200, {"queued": 1, "duplicates": 0, "ignored": 0})
            status, text = await post(port, ok)  # a retried delivery
            assert json.loads(text) == {"queued": 0, "duplicates": 1, "ignored": 0}
            outside = envelope(push_event("e2", "other/api"), push_event("e3", "shop/api", "x"))
            assert json.loads((await post(port, outside))[1]) == {
                "queued": 1,
                "duplicates": 0,
                "ignored": 1,
            }
            unknown = await post(
                port, envelope(push_event("e4", "shop/api")), path="/events/distribution/nope"
            )
            assert json.loads(unknown[1])["ignored"] == 1
            # Names the catalog does not know leave nothing behind (the caller chooses them).
            for n in range(20):
                path = f"/events/distribution/made-up-{n}"
                await post(port, envelope(push_event(f"u{n}", "shop/api")), path=path)
            assert not [r for r in service.push_events._pending if r.startswith(("nope", "made"))]
            # Blob pushes, pulls and invalid names are not manifest events: nothing queued.
            blob = push_event("e5", "shop/api") | {
                "target": {"mediaType": "application/octet-stream", "repository": "shop/api"}
            }
            pull = push_event("e6", "shop/api") | {"action": "pull"}
            bad = push_event("e7", "Shop/../API")
            assert json.loads((await post(port, envelope(blob, pull, bad)))[1]) == {
                "queued": 0,
                "duplicates": 0,
                "ignored": 0,
            }
            # Not an envelope, too deep, too large, another type: one-line refusals.
            status, text = await post(port, b"[1, 2")
            assert status == 400
            assert text.count("\n") == 1
            assert "not a notification envelope" in text
            assert (await post(port, b"[" * 100 + b"]" * 100))[0] == 400
            assert (await post(port, b" " * (2 << 20)))[0] == 413
            assert (await post(port, ok, content_type="text/plain"))[0] == 415
            assert (await post(port, ok, path="/events/other"))[0] == 404


def test_the_events_listener_obeys_the_exposure_rule(tmp_path: Path) -> None:
    exposed = serve_config(tmp_path, 8088, "127.0.0.1:5000").model_copy(
        update={"events": EventsSettings(listen="0.0.0.0:8088")}
    )
    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0:8088"):
        exposed.exposure_warnings()
