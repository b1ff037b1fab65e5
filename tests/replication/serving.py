"""What the replication tests give ``xregistry serve`` (tests/harness/serve_process.py) and read
back: a mirroring configuration, the tasks of a run, the writes a destination accepted."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from replication.models import ReplicationTask
from tests.harness.faultproxy import FaultProxy
from tests.replication.conftest import Pair


def mirror_config(
    path: Path, database: str, pair: Pair, lease: str, poll: str = "1s", **rule: Any
) -> Path:
    """A serve config with the pair's proxies as registries `src` and `dst`, two task slots, a
    1 s poll, and one rule `mirror` from src to dst."""
    config = dict(
        database=database,
        registries=[
            {"name": "src", "host": pair.source_proxy.host, "insecure": True},
            {"name": "dst", "host": pair.destination_proxy.host, "insecure": True},
        ],
        replication={
            "workers": 2,
            "lease": lease,
            "poll": poll,
            "rules": [{"name": "mirror", "source": "src", "destination": "dst", **rule}],
        },
    )
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


UPLOAD_DONE = re.compile(r"^/v2/(.+)/blobs/uploads/")
MANIFEST = re.compile(r"^/v2/(.+)/manifests/(.+)$")


def landed_writes(proxy: FaultProxy) -> Counter[tuple[str, str]]:
    """Every write the destination accepted: finished blob uploads by (repository, digest),
    manifest PUTs by (repository, reference)."""
    writes: Counter[tuple[str, str]] = Counter()
    for event in proxy.events:
        if event.method != "PUT" or event.status not in (201, 204):
            continue
        if m := UPLOAD_DONE.match(event.path):
            digest = re.search(r"digest=([^&]+)", event.query)
            assert digest is not None
            writes[(m.group(1), digest.group(1).replace("%3A", ":"))] += 1
        elif m := MANIFEST.match(event.path):
            writes[(m.group(1), m.group(2))] += 1
    return writes


def tasks(sessions: sessionmaker[Session], run_id: int) -> list[ReplicationTask]:
    with sessions() as session:
        query = select(ReplicationTask).where(ReplicationTask.run_id == run_id)
        return list(session.scalars(query).all())


async def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
