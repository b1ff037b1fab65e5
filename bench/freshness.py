"""Freshness: how long after a push an image is indexed and replicated, with registry push
events beside schedule-only indexing at its shortest interval, in one run.

Two real ``docker-registry`` processes (source and destination) and an ``xregistry serve``
(in this process, as tests run it) with a rule that follows index events (``on_index``) from
source to destination. Then ``--images`` images are pushed one by one; after each push the bench
polls (every 20 ms) until the catalog has the tag (push → indexed) and the destination serves it
(push → replicated), then pushes the next.

- ``events``: the source registry notifies the server (Distribution's `notifications`,
  authenticated with a bearer token); no index schedule.
- ``schedule``: no notifications; the source is indexed every second (the shortest interval a
  schedule takes), each run crawling the whole registry.

Run: ``.venv/bin/python -m bench.freshness [--images 50]``. Needs ``docker-registry``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench._stats import p50_p99
from catalog.app.auth_config import AuthSettings, Binding, Role, StaticToken
from catalog.app.config import RegistryConfig, ReplicationSettings, ServeConfig
from catalog.app.events_config import EventsSettings
from catalog.daemon import Server
from catalog.errors import NotFound
from catalog.oci.client import RegistryClient
from replication.spec import RuleSpec
from tests.harness.images import build_image
from tests.harness.ports import free_port
from tests.harness.registry import RunningRegistry, run_registry
from tests.pushing import push_built

TOKEN = "bench-notifier-token-0123456789"
REPOSITORY = "fresh/app"


def notifications(port: int) -> dict[str, Any]:
    return {
        "notifications": {
            "endpoints": [
                {
                    "name": "xregistry",
                    "url": f"http://127.0.0.1:{port}/events/distribution/src",
                    "headers": {"Authorization": [f"Bearer {TOKEN}"]},
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "1s",
                    "ignoredmediatypes": ["application/octet-stream"],
                }
            ]
        }
    }


@contextmanager
def registries(work: Path, events_port: int | None) -> Iterator[tuple[RunningRegistry, ...]]:
    extra = notifications(events_port) if events_port is not None else None
    with run_registry(work, extra=extra) as source, run_registry(work) as destination:
        yield source, destination


def config(work: Path, source: str, destination: str, events_port: int | None) -> ServeConfig:
    index = None if events_port is not None else {"interval": "1s"}
    return ServeConfig(
        database=f"sqlite:///{work / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[
            RegistryConfig.model_validate(
                {"name": "src", "host": source, "insecure": True, "index": index}
            ),
            RegistryConfig(name="dst", host=destination, insecure=True),
        ],
        replication=ReplicationSettings(
            poll="1s",
            rules=[
                RuleSpec(name="follow", source="src", destination="dst", prefix="m", on_index=True)
            ],
        ),
        auth=AuthSettings(
            tokens=[
                StaticToken(name="registry", sha256=hashlib.sha256(TOKEN.encode()).hexdigest())
            ],
            bindings=[Binding(role=Role.NOTIFIER, principals=["token:registry"])],
        ),
        events=None
        if events_port is None
        else EventsSettings(listen=f"127.0.0.1:{events_port}", settle=0.05),
    )


def indexed_digest(service: Server, tag: str) -> str | None:
    try:
        page = service.catalog.list_tags("src", REPOSITORY, size=1000)
    except NotFound:
        return None
    return next((t.digest for t in page.items if t.name == tag), None)


async def measure(mode: str, images: int, rng: random.Random) -> tuple[list[float], list[float]]:
    events_port = free_port() if mode == "events" else None
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"fresh-{mode}-")))
        source, destination = stack.enter_context(registries(work, events_port))
        service = Server(config(work, source.host, destination.host, events_port))
        await service.start()
        to_index: list[float] = []
        to_copy: list[float] = []
        try:
            async with (
                RegistryClient(source.host) as push,
                RegistryClient(destination.host) as look,
            ):
                for n in range(images):
                    image = build_image(rng, layers=1)
                    tag = f"v{n}"
                    pushed = time.monotonic()
                    await push_built(push, REPOSITORY, image, tag)
                    indexed = copied = None
                    while copied is None:
                        now = time.monotonic()
                        if now - pushed > 60:
                            raise SystemExit(f"{mode}: {tag} not replicated within 60 s")
                        if indexed is None:
                            found = await asyncio.to_thread(indexed_digest, service, tag)
                            if found == image.digest:
                                indexed = time.monotonic()
                        if indexed is not None:
                            head = await look.head_manifest(f"m/{REPOSITORY}", tag)
                            if head is not None and str(head.digest) == image.digest:
                                copied = time.monotonic()
                        if copied is None:
                            await asyncio.sleep(0.02)
                    assert indexed is not None
                    to_index.append(indexed - pushed)
                    to_copy.append(copied - pushed)
        finally:
            await service.stop()
    return to_index, to_copy


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    results = {mode: await measure(mode, args.images, rng) for mode in ("events", "schedule")}
    print(f"{args.images} images pushed one by one; seconds after each push (p50 / p99)")
    print(f"{'mode':<10} {'indexed p50':>12} {'p99':>7} {'replicated p50':>15} {'p99':>7}")
    for mode, (to_index, to_copy) in results.items():
        (i50, i99), (c50, c99) = p50_p99(to_index), p50_p99(to_copy)
        print(f"{mode:<10} {i50:>12.3f} {i99:>7.3f} {c50:>15.3f} {c99:>7.3f}")
    (_, events_copy), (_, schedule_copy) = results["events"], results["schedule"]
    e50, e99 = p50_p99(events_copy)
    s50, s99 = p50_p99(schedule_copy)
    print(f"push→replicated, schedule / events: p50 {s50 / e50:.1f}x, p99 {s99 / e99:.1f}x")
    print(
        f"aim (events): p50 ≤ 2 s: {'met' if e50 <= 2 else 'MISSED'}; p99 ≤ 5 s: "
        f"{'met' if e99 <= 5 else 'MISSED'}"
    )


if __name__ == "__main__":
    asyncio.run(main())
