"""``xregistry serve`` as a real process: for tests that kill it, run two of it, or use it as
users start it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.harness.processes import stop_gracefully

_SERVING = re.compile(r"xregistry serving on port (\d+)")


class ServeProcess:
    """``xregistry serve --config CONFIG`` on a port of the kernel's choosing, its output to
    ``log`` (appended: a test may start it again after a kill). The port is read from its INFO
    line: a config that logs only warnings never says it."""

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
        """Until it says it listens, and on which port. A port picked for a child ahead of its
        bind can be taken meanwhile; the kernel's own pick cannot."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not (found := _SERVING.search(output := self.output())):
            if self.process.poll() is not None:
                raise AssertionError(f"xregistry serve exited: {output[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"xregistry serve did not listen in {timeout} s: {output[-2000:]}"
                )
            time.sleep(0.05)
        self.port = int(found[1])

    def output(self) -> str:
        """What this launch has written."""
        return self.log.read_bytes()[self._since :].decode(errors="replace")

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_gracefully(self.process, 20)
