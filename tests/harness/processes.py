"""Other processes as /proc tells them: whether one has ended, the CPU time it has used."""

from __future__ import annotations

import os
import time
from pathlib import Path


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
