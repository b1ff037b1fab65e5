"""A one-shot command's process ends without the interpreter's teardown (catalog.cli.quick_exit),
keeping what an exit owes: the output, the exit status, the exit handlers, other threads' work.

Each command runs as a process, as the console script runs it. The probe's exit handler marks that
it ran and leaves an object whose finaliser marks the interpreter's teardown; the probe may
start a thread of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness.registry import RunningRegistry

_PROBE = """
import atexit, os, sys, threading
marks = sys.argv.pop(1)

def mark(name, *, join=os.path.join, open_=os.open, close=os.close, flags=os.O_CREAT | os.O_WRONLY):
    close(open_(join(marks, name), flags))

class Teardown:
    def __del__(self, mark=mark):
        mark("teardown")

def exit_handler():
    mark("exit-handlers")
    # Freed when the interpreter's teardown clears sys (what the CLI's imports hold is frozen
    # by the collector and never freed: catalog.lazy), never by a quick exit.
    sys.last_value = Teardown()

atexit.register(exit_handler)
if sys.argv.pop(1) == "thread":
    # Alive until the interpreter's exit lets it go (its end of the main thread).
    threading.Thread(target=lambda: (threading.main_thread().join(), mark("thread"))).start()
from catalog.cli.main import main
main(sys.argv[1:], prog_name="xregistry")
"""


def run(
    tmp_path: Path, args: list[str], thread: bool = False, stdout: bool = True
) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """How the command ended, and the marks its process left (see _PROBE). Without ``stdout``
    the process starts with none (``>&-``)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    shell = [] if stdout else ["sh", "-c", 'exec "$@" >&-', "sh"]
    done = subprocess.run(
        [*shell, sys.executable, "-c", _PROBE, str(marks), "thread" if thread else "-", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return {p.name for p in marks.iterdir()}, done


def once(registry: RunningRegistry) -> list[str]:
    # Nothing to copy in a fresh registry: the run lists the source and ends.
    source, destination = f"{registry.host}/shop/**", f"{registry.host}/mirror"
    return ["replicate", "once", "--from", source, "--to", destination, "--output", "json"]


def test_replicate_once_ends_at_once_with_its_output_and_exit_handlers(
    fresh_registry: RunningRegistry, tmp_path: Path
) -> None:
    marks, done = run(tmp_path, once(fresh_registry))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imagesTotal"] == 0
    assert marks == {"exit-handlers"}  # no teardown


def test_a_failing_replicate_once_keeps_its_exit_status_and_one_line(tmp_path: Path) -> None:
    marks, done = run(tmp_path, ["replicate", "once", "--from", "127.0.0.1:1", "--to", "b:5000"])

    assert done.returncode == 4  # unavailable
    assert done.stderr.startswith("xregistry: error: UNAVAILABLE: 127.0.0.1:1 unreachable")
    assert len(done.stderr.splitlines()) == 1
    assert marks == {"exit-handlers"}


def test_another_thread_is_waited_for_by_the_usual_exit(
    fresh_registry: RunningRegistry, tmp_path: Path
) -> None:
    marks, done = run(tmp_path, once(fresh_registry), thread=True)

    assert done.returncode == 0, done.stderr
    assert marks == {"exit-handlers", "thread", "teardown"}


def test_a_command_that_does_not_allow_it_exits_as_ever(tmp_path: Path) -> None:
    marks, done = run(tmp_path, ["digest", "--help"])

    assert done.returncode == 0, done.stderr
    assert marks == {"exit-handlers", "teardown"}


def test_a_process_started_without_stdout_ends_without_a_traceback(
    fresh_registry: RunningRegistry, tmp_path: Path
) -> None:
    marks, done = run(tmp_path, once(fresh_registry), stdout=False)

    assert (done.returncode, done.stderr) == (0, "")
    assert marks == {"exit-handlers"}
