"""A docker credential helper is a program of someone else's: what it prints is bounded, and
when it fails, one line of it is quoted, never the secret (real helper programs on PATH)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from catalog.oci._bounded_run import run_bounded
from catalog.oci.credentials import run_credential_helper
from catalog.oci.errors import AuthError
from tests.harness.processes import ended

SECRET = "hunter2-the-secret-value"


def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    program = bindir / "docker-credential-hostile"
    program.write_text("#!/bin/sh\nread server\n" + body)
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return "hostile"


def refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    with pytest.raises(AuthError) as refused:
        run_credential_helper(helper(tmp_path, monkeypatch, body), "registry.example")
    message = str(refused.value)
    assert "\n" not in message
    assert SECRET not in message
    return message


@pytest.mark.parametrize(
    "body",
    [
        # Its answer, then a failure: the JSON that holds the secret is not quoted.
        f'echo \'{{"ServerURL":"x","Username":"u","Secret":"{SECRET}"}}\'; exit 1\n',
        f"echo 'could not refresh: password={SECRET}'; exit 1\n",
        f"echo 'refused: Authorization: Bearer {SECRET}' >&2; exit 1\n",
    ],
    ids=["json", "password=", "bearer"],
)
def test_a_failing_helper_never_echoes_its_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    message = refusal(tmp_path, monkeypatch, body)
    assert message.startswith("credential helper 'docker-credential-hostile' failed: ")


def test_a_helper_failure_is_its_first_line_cut_to_300_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_line = "no such key " * 500
    message = refusal(
        tmp_path, monkeypatch, f"echo 'keychain locked'; echo '{long_line}'; exit 1\n"
    )
    assert message == "credential helper 'docker-credential-hostile' failed: keychain locked"
    message = refusal(tmp_path, monkeypatch, f"echo '{long_line}' >&2; exit 1\n")
    assert len(message.partition("failed: ")[2]) == 300


@pytest.mark.parametrize(
    "line",
    [
        SECRET,  # the bare secret: redaction saw no key and no scheme, and quoted it
        "hunter22",  # a short one, alone on its line
        f"refused {SECRET} for registry.example",  # a token-like word in a sentence
        f"'{SECRET}' is not valid",
    ],
    ids=["bare", "short-bare", "in-a-sentence", "quoted"],
)
def test_a_failure_that_may_be_a_secret_is_not_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    for stream in ("", " >&2"):
        message = refusal(tmp_path, monkeypatch, f'echo "{line}"{stream}; exit 1\n')
        assert "hunter2" not in message
        assert message == (
            "credential helper 'docker-credential-hostile' failed: "
            "(its message is not quoted: it may hold the secret)"
        )


def test_an_endless_helper_is_cut_at_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``yes`` prints forever: it is killed at 64 KiB of stdout; endless stderr is read and
    dropped past the cap until the program ends."""
    started = time.monotonic()
    message = refusal(tmp_path, monkeypatch, "exec yes\n")
    assert message == "credential helper 'docker-credential-hostile' printed more than 65536 bytes"
    message = refusal(
        tmp_path, monkeypatch, "head -c 50000000 /dev/zero | tr '\\0' x >&2; exit 1\n"
    )
    assert message == (
        "credential helper 'docker-credential-hostile' failed: "
        "(its message is not quoted: it may hold the secret)"
    )
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "answer",
    ["$(head -c 60000 /dev/zero | tr '\\0' '[')", "$(head -c 5000 /dev/zero | tr '\\0' 7)"],
    ids=["deep", "long-number"],
)
def test_a_hostile_answer_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # json.loads raised RecursionError and ValueError (4,300 digits at most): tracebacks.
    message = refusal(tmp_path, monkeypatch, f'echo "{answer}"\n')
    assert message == (
        "credential helper 'docker-credential-hostile' answered something that is not JSON"
    )


def _left_behind(pidfile: Path) -> int:
    """The pid of the process the helper started; ended within 5 s (it was killed) or 0."""
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not ended(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):  # it may end meanwhile
                os.kill(pid, 9)  # the test's own cleaning up
            return pid
        time.sleep(0.05)
    return 0


def test_a_helper_that_hangs_is_killed_with_what_it_started(tmp_path: Path) -> None:
    # The helper waits on a child that holds its pipes: both killed at the deadline.
    pidfile = tmp_path / "pid"
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_bounded(["sh", "-c", script], b"", cap=1024, timeout=2)
    assert time.monotonic() - started < 4
    assert _left_behind(pidfile) == 0, "the helper's child outlived its deadline"


def test_a_helper_that_overflows_is_killed_with_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child prints past the cap, then keeps the pipe open.
    pidfile = tmp_path / "pid"
    body = f"(head -c 100000 /dev/zero; exec sleep 300) & echo $! > {pidfile}; wait\n"
    message = refusal(tmp_path, monkeypatch, body)
    assert message == "credential helper 'docker-credential-hostile' printed more than 65536 bytes"
    assert _left_behind(pidfile) == 0, "the helper's child outlived the overflow"


def test_a_helper_that_answers_and_leaves_a_child_holding_its_pipes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer stands; the child is killed a second after the helper ended, not at 30 s.
    pidfile = tmp_path / "pid"
    answer = f'{{"ServerURL":"x","Username":"u","Secret":"{SECRET}"}}'
    body = f"echo '{answer}'; sleep 300 & echo $! > {pidfile}; exit 0\n"
    started = time.monotonic()
    found = run_credential_helper(helper(tmp_path, monkeypatch, body), "registry.example")
    assert found is not None
    assert (found.username, found.password) == ("u", SECRET)
    assert time.monotonic() - started < 10
    assert _left_behind(pidfile) == 0, "the helper's child outlived its answer"
