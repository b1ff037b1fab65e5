"""A short-lived program run with its output bounded: ``subprocess.run(capture_output=True)``
keeps all a program prints, so a credential helper gone wrong could fill the memory."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from typing import NamedTuple


class OutputTooLarge(Exception):
    """The program printed more than the cap on stdout; it was killed."""


class Finished(NamedTuple):  # not a dataclass: no generated code on a one-shot command's path
    returncode: int
    stdout: bytes
    stderr: bytes  # its first ``cap`` bytes; the rest was read and dropped


def run_bounded(argv: list[str], stdin: bytes, *, cap: int, timeout: float) -> Finished:
    """Run ``argv`` with ``stdin``; at most ``cap`` bytes of each output are kept.

    Raises FileNotFoundError, :class:`OutputTooLarge` (stdout over ``cap``: an answer cut
    short is no answer) or subprocess.TimeoutExpired (the program is killed either way).
    """
    deadline = time.monotonic() + timeout
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        # All three are PIPE.
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            process.stdin.write(stdin)
            process.stdin.close()
        except BrokenPipeError:
            pass  # it did not read its input: its exit status says what it thought
        out, err = process.stdout.fileno(), process.stderr.fileno()
        kept = {out: bytearray(), err: bytearray()}
        try:
            with selectors.DefaultSelector() as selector:
                for fd in kept:
                    selector.register(fd, selectors.EVENT_READ)
                while selector.get_map():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise subprocess.TimeoutExpired(argv, timeout)
                    for key, _ in selector.select(left):
                        chunk = os.read(key.fd, 65536)
                        if not chunk:
                            selector.unregister(key.fd)
                            continue
                        room = cap - len(kept[key.fd])
                        if key.fd == out and len(chunk) > room:
                            raise OutputTooLarge(cap)
                        kept[key.fd] += chunk[: max(room, 0)]
            returncode = process.wait(max(deadline - time.monotonic(), 0.001))
        except BaseException:
            process.kill()
            raise
    return Finished(returncode, bytes(kept[out]), bytes(kept[err]))
