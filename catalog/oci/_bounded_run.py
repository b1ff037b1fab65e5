"""A short-lived program run with its output bounded: ``subprocess.run(capture_output=True)``
keeps all a program prints, so a credential helper gone wrong could fill the memory.

The program runs in a session of its own, and what is killed is its process group: a child it
started that keeps the pipes open (``sleep 100 &``) would otherwise outlive the deadline, and
keep the reader waiting for an end of file that never comes.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from typing import NamedTuple

# After the program itself has ended, how long what it left behind may hold its pipes open.
_LINGER = 1.0
# How often the program's own end is looked at while its pipes stay open.
_LOOK = 0.1


class OutputTooLarge(Exception):
    """The program printed more than the cap on stdout; it was killed."""


class Finished(NamedTuple):  # not a dataclass: no generated code on a one-shot command's path
    returncode: int
    stdout: bytes
    stderr: bytes  # its first ``cap`` bytes; the rest was read and dropped


def run_bounded(argv: list[str], stdin: bytes, *, cap: int, timeout: float) -> Finished:
    """Run ``argv`` with ``stdin``; at most ``cap`` bytes of each output are kept.

    Raises FileNotFoundError, :class:`OutputTooLarge` (stdout over ``cap``: an answer cut
    short is no answer) or subprocess.TimeoutExpired (the program and every process of its
    group are killed either way). When the program has ended but a process it left still holds
    its pipes a second later, the group is killed and the program's answer stands.
    """
    deadline = time.monotonic() + timeout
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        # All three are PIPE.
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        out, err = process.stdout.fileno(), process.stderr.fileno()
        kept = {out: bytearray(), err: bytearray()}
        try:
            try:
                process.stdin.write(stdin)
                process.stdin.close()
            except BrokenPipeError:
                pass  # it did not read its input: its exit status says what it thought
            lingering = float("inf")  # once the program has ended: until when its pipes may stay
            with selectors.DefaultSelector() as selector:
                for fd in kept:
                    selector.register(fd, selectors.EVENT_READ)
                while selector.get_map():
                    now = time.monotonic()
                    if now >= deadline:
                        raise subprocess.TimeoutExpired(argv, timeout)
                    if lingering == float("inf") and _ended(process):
                        lingering = now + _LINGER
                    elif now >= lingering:
                        _kill_group(process.pid)  # its pipes end; what they hold is still read
                        lingering = deadline
                    for key, _ in selector.select(min(deadline - now, _LOOK)):
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
            _kill_group(process.pid)
            raise
    return Finished(returncode, bytes(kept[out]), bytes(kept[err]))


def _ended(process: subprocess.Popen[bytes]) -> bool:
    """Whether the program has ended, without reaping it where the system allows: its pid, the
    group's id, then stays taken until it is waited for, so that the group killed is never
    another's. (Python 3.11 has no ``waitid`` on macOS: there ``poll`` reaps it, and the id
    stays taken while a process of its group lives, the case the kill is for.)"""
    if hasattr(os, "waitid"):
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    return process.poll() is not None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # every process of the group has ended
        os.killpg(pid, signal.SIGKILL)
