"""Run ``xregistry`` as a user does and measure it: exit code, one-line stderr, time, peak RSS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int  # bytes, of this child alone

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


# Started by a small process of its own: a child of the test process (vfork, then exec) starts
# its high-water RSS at the test process's own, and getrusage(RUSAGE_CHILDREN) would report the
# largest child the tests ever had. wait4 gives this one child's peak alone.
_MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"code": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}, out)
"""


def run_cli(args: list[str], tmp: Path, limit: float, env: dict[str, str] | None = None) -> Run:
    """``xregistry ARGS`` in a subprocess of this worktree's code, killed after ``limit`` s;
    its time and peak RSS are printed (``pytest -s`` shows them)."""
    stdout, stderr, report = tmp / "stdout", tmp / "stderr", tmp / "measured.json"
    report.unlink(missing_ok=True)
    env = os.environ | {"DOCKER_CONFIG": str(tmp), "NO_COLOR": "1", "COLUMNS": "400"} | (env or {})
    command = [sys.executable, "-m", "catalog.cli.main", *args]
    began = time.monotonic()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, str(report), *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,  # one group: the timer kills the command with its wrapper
        )
        killer = threading.Timer(limit, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            proc.wait()
        finally:
            killer.cancel()
    seconds = time.monotonic() - began
    measured = json.loads(report.read_text()) if report.exists() else {}
    run = Run(
        measured.get("code", -9),
        stdout.read_text(errors="replace"),
        stderr.read_text(errors="replace"),
        seconds,
        measured.get("maxrss_kib", 0) * 1024,  # KiB on Linux
    )
    shown = args[2:4] if args[0] == "--database" else args[:2]
    print(
        f"measured: xregistry {' '.join(shown)}: exit {run.code}, {run.seconds:.2f} s, "
        f"peak RSS {run.peak_rss / 2**20:.0f} MiB"
    )
    return run
