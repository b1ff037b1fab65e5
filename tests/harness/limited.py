"""A command of the project run in a process of its own with 1 GiB of address space: a
runaway read (a device, a pipe without end) stops there instead of taking the machine."""

from __future__ import annotations

import resource
import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ADDRESS_SPACE = 1 << 30


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_limited(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``argv`` from the repository's root, its output captured as text."""
    return subprocess.run(
        list(argv),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit,
    )
