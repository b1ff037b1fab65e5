"""``xregistry serve`` as a real process: for tests that kill it, run two of it, or use it as
users start it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from tests.harness.processes import stop_gracefully

T = TypeVar("T")

_SERVING = re.compile(r"xregistry serving on port (\d+)")


class ServeProcess:
    """``xregistry serve --config CONFIG`` on a port of the kernel's choosing, its output to
    ``log`` (appended: a test may start it again after a kill). The port is read from its INFO
    line: a config that logs only warnings never says it."""

    def __init__(
        self, config: Path, log: Path, *, flags: Sequence[str] = (), stdout: Path | None = None
    ) -> None:
        """``flags`` go before ``serve`` (the CLI's own); ``stdout`` keeps that stream apart
        (the log then holds stderr alone)."""
        self.config, self.log = config, log
        self.flags, self.stdout = tuple(flags), stdout
        self.port = 0  # the kernel's pick, known once it listens
        self._since = 0  # where this launch's output starts in the log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_listening(timeout)

    def launch(self) -> None:
        self._since = self.log.stat().st_size if self.log.exists() else 0
        with contextlib.ExitStack() as files:
            err = files.enter_context(self.log.open("ab"))
            out = files.enter_context(self.stdout.open("ab")) if self.stdout else err
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "catalog.cli.main",
                    *self.flags,
                    "serve",
                    "--config",
                    str(self.config),
                    "--listen",
                    "127.0.0.1:0",
                ],
                stdout=out,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_listening(self, timeout: float = 30.0) -> None:
        """Until it says it listens, and on which port. A port picked for a child ahead of its
        bind can be taken meanwhile; the kernel's own pick cannot."""
        self.port = int(self.wait_for(_SERVING.search, timeout, "listening")[1])

    def wait_for(self, found: Callable[[str], T | None], seconds: float, what: str) -> T:
        """What ``found`` makes of this launch's output once it finds something; fails when the
        process exits first or ``seconds`` pass."""
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while not (result := found(output := self.output())):
            if self.process.poll() is not None:
                raise AssertionError(f"xregistry serve exited: {output[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {seconds} s: {output[-3000:]}")
            time.sleep(0.05)
        return result

    def output(self) -> str:
        """What this launch has written."""
        return self.log.read_bytes()[self._since :].decode(errors="replace")

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL after 30 s; its exit status (None: never launched)."""
        return None if self.process is None else stop_gracefully(self.process, 30)
