"""Other processes as /proc tells them (whether one has ended, the CPU time it has used), and
a child's graceful stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


def stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command's name (which may hold spaces and
    parentheses): the state (field 3) first."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system: fields 14 and 15) process ``pid`` has used so far."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ended(pid: int) -> bool:
    """Whether process ``pid`` has ended (gone, or a zombie not yet reaped by its parent)."""
    try:
        state = stat_fields(pid)[0]
    except (FileNotFoundError, ProcessLookupError):  # reaped before the open, or the read
        return True
    return state in ("Z", "X")


def ends_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` ends within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not ended(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_gracefully(process: subprocess.Popen[Any], grace: float) -> int:
    """SIGTERM to ``process`` if it runs, SIGKILL if it has not ended within ``grace`` seconds;
    its exit status (negative: the signal that ended it)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode
