"""The CLI's patience with a silent stream is derived from the heartbeat both servers send: the
two servicers and the client read one constant (catalog.heartbeats), and the client waits
several heartbeats, so that a busy server's late one never ends a working stream."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from catalog import heartbeats
from catalog.cli import remote

REPO = Path(__file__).resolve().parents[2]

# Another heartbeat, set before the streams' modules are imported: each must follow it (a copy
# of its own, as each had, would not).
_FOLLOWED = """
import json
from catalog import heartbeats
heartbeats.HEARTBEAT, heartbeats.CLIENT_IDLE = 2.0, 8.0
from catalog.api import gate_servicer
from catalog.cli import remote
from replication import service
print(json.dumps([
    vars(gate_servicer)["HEARTBEAT"],
    service.ReplicationService.watch_run.__defaults__[-1],
    remote.IDLE,
]))
"""


def test_the_clients_idle_deadline_exceeds_the_servers_heartbeat() -> None:
    assert remote.IDLE == heartbeats.CLIENT_IDLE
    assert 3 * heartbeats.HEARTBEAT <= remote.IDLE


def test_the_servers_and_the_client_read_one_heartbeat() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FOLLOWED], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [2.0, 2.0, 8.0]  # EvaluateCatalog, WatchRun, the CLI
