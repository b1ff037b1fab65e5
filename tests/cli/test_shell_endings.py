"""Ctrl-C and a closed stdout end a command as shells expect (README's exit codes 130, 141),
in real processes: one line for an interruption, nothing for a reader that stopped reading."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
XREGISTRY = (sys.executable, "-m", "catalog.cli.main")


# read(2)'s number, whose first argument /proc/PID/syscall shows: the process reads stdin.
_READ = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())


def _waiting_on_stdin(pid: int) -> bool:
    try:
        if _READ is not None:
            number, fd, *_ = Path(f"/proc/{pid}/syscall").read_text().split()
            return (number, fd) == (_READ, "0x0")
        # Any pipe read: less sure (once, in a clean clone's run, the signal came before the
        # command read stdin and it went on to read an empty review).
        return Path(f"/proc/{pid}/wchan").read_text().endswith("pipe_read")
    except (OSError, ValueError):
        return False


def test_ctrl_c_is_one_line_and_130(tmp_path: Path) -> None:
    """``admission review -`` waits for its review on stdin; SIGINT while it waits."""
    with subprocess.Popen(
        [*XREGISTRY, "--database", f"sqlite:///{tmp_path / 'c.db'}", "admission", "review", "-"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell starts a background job (CI's, nohup's) with SIGINT ignored, and Python then
        # leaves it ignored: the signal must reach the command as a terminal's Ctrl-C does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as process:
        deadline = time.monotonic() + 60
        while not _waiting_on_stdin(process.pid):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "never came to read stdin"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert (process.returncode, stdout, stderr) == (130, "", "xregistry: error: interrupted\n")


def test_a_closed_stdout_ends_quietly_with_141(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'c.db'}"
    subprocess.run(
        [*XREGISTRY, "--database", database, "registry", "add", "local", "127.0.0.1:1"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert _into_closed_pipe([*XREGISTRY, "--database", database, "registry", "list"]) == (141, "")


# A command that lists, then writes to a connection whose peer is gone (Python ignores SIGPIPE:
# the write raises BrokenPipeError, as a registry's or a server's socket would).
_PEER_GONE = """
import socket
from catalog.cli.errors import shell_endings
mine, peer = socket.socketpair()
peer.close()
with shell_endings():
    print("listed")
    mine.sendall(b"x" * 100_000)
"""


def test_a_broken_pipe_to_a_peer_is_an_error_not_a_quiet_141() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PEER_GONE], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (1, "listed\n"), done.stderr  # old code: 141, quiet
    assert done.stderr == "xregistry: error: closed while written to: Broken pipe\n"


def test_a_broken_pipe_to_a_peer_with_stdout_closed_too_is_141() -> None:
    assert _into_closed_pipe([sys.executable, "-c", _PEER_GONE]) == (141, "")


def test_help_and_version_into_a_closed_pipe_end_quietly_with_141() -> None:
    """Printed while the options are parsed, before any command runs (click's ending was 1)."""
    for words in (("--help",), ("--version",), ("registry", "list", "--help")):
        read, write = os.pipe()
        os.close(read)
        with subprocess.Popen(
            [*XREGISTRY, *words], cwd=REPO, stdout=write, stderr=subprocess.PIPE, text=True
        ) as process:
            os.close(write)
            _, stderr = process.communicate(timeout=60)
        assert (process.returncode, stderr) == (141, ""), words


# A Ctrl-C is a KeyboardInterrupt raised wherever the interpreter is: here, deterministically,
# as the start-up imports click (the console script's own import line follows), or as the
# root's --output is parsed.
_WHILE_IMPORTING = """
import sys
assert "click" not in sys.modules
class Interrupted:
    def find_spec(self, name, path=None, target=None):
        if name == "click":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupted())
from catalog.cli.main import main
main(prog_name="xregistry")
"""
_WHILE_PARSING = """
import click
def interrupted(self, value, param, ctx):
    raise KeyboardInterrupt
click.Choice.convert = interrupted
from catalog.cli.main import main
main(["-o", "json", "registry", "list"], prog_name="xregistry")
"""


def test_ctrl_c_while_starting_is_one_line_and_130() -> None:
    for moment in (_WHILE_IMPORTING, _WHILE_PARSING):
        done = subprocess.run(
            [sys.executable, "-c", moment], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert (done.returncode, done.stdout, done.stderr) == (
            130,
            "",
            "xregistry: error: interrupted\n",
        ), moment


def _into_closed_pipe(argv: list[str]) -> tuple[int, str]:
    """``argv``'s exit code and stderr, its stdout a pipe whose reader is gone before anything
    is written (``| head -0``)."""
    read, write = os.pipe()
    os.close(read)
    with subprocess.Popen(
        argv, cwd=REPO, stdout=write, stderr=subprocess.PIPE, text=True
    ) as process:
        os.close(write)
        _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr
