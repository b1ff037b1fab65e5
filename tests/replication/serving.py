"""``xregistry serve`` as a real process, for tests that kill it or run two of it, and what they
read back: the tasks of a run, the writes a destination accepted."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
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
from tests.harness.ports import announced_port
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


class ServeProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.port = 0  # the kernel's pick, known once it listens
        self._since = 0  # where this launch's output starts in the log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_listening(timeout)

    def launch(self) -> None:
        self._since = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "catalog.cli.main",
                    "serve",
                    "--config",
                    str(self.config),
                    "--listen",
                    "127.0.0.1:0",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_listening(self, timeout: float = 30.0) -> None:
        assert self.process is not None
        self.port = announced_port(self.log, self.process, since=self._since, timeout=timeout)

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


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
