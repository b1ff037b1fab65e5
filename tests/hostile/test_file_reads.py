"""Every small file the catalog reads whole is read within its cap (catalog/files.py).

The hostile files: ``/dev/zero`` (a device whose stat says 0 and whose read never ends), a FIFO
without a writer (an open that would wait forever), an oversized (sparse) file, and for JSON
and YAML a deeply nested document. Each reader answers one line naming the file, in a process
of its own with 1 GiB of address space and a timeout, so that a read that runs away fails the
test instead of the machine.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from catalog.files import FileRefused, FileTooLarge, read_capped
from tests.harness.limited import run_limited

MB = 1024 * 1024


def hostile_files(folder: Path) -> dict[str, Path]:
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    big = folder / "big"
    with big.open("wb") as f:
        f.truncate(300 * MB)
    deep = folder / "deep"
    deep.write_bytes(b"[" * 3000 + b"]" * 3000)
    return {"zero": Path("/dev/zero"), "fifo": fifo, "big": big, "deep": deep}


# Run in the child: each reader on each file; prints {reader/kind: [error type, message]}.
_PROBE = """
import json, sys
from pathlib import Path
from catalog.app.config import load_config
from catalog.oci.credentials import DockerConfig
from catalog.oci.secrets import NamedCredentials
from catalog.trust import roots
from catalog.trust._internal import sigstore_api, sigstore_root

READERS = {
    "serve-config": lambda p: load_config(p),
    "docker-config": lambda p: DockerConfig(p).lookup("registry.example"),
    "credentials-file": lambda p: NamedCredentials("me", file=p).load("registry.example"),
    "key-file": lambda p: roots.read(p, "key:k"),
    "trusted-root": lambda p: sigstore_root.load_file("trusted-root:t", p),
    "trusted-root-again": lambda p: sigstore_api._verifier(
        sigstore_root.SigstoreRoot(id="trusted-root:t", path=p, data=b"{}")
    ),
}
out = {}
for kind, path in json.loads(sys.argv[1]).items():
    for reader, read in READERS.items():
        try:
            read(Path(path))
            out[f"{reader}/{kind}"] = ["none", ""]
        except Exception as exc:
            out[f"{reader}/{kind}"] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""


def test_every_reader_refuses_hostile_files_in_one_line(tmp_path: Path) -> None:
    files = hostile_files(tmp_path)
    done = run_limited(
        [sys.executable, "-c", _PROBE, json.dumps({k: str(v) for k, v in files.items()})], 120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    expected = {
        "serve-config": "ConfigError",
        "docker-config": "AuthError",
        "credentials-file": "AuthError",
        "key-file": "TrustRootError",
        "trusted-root": "TrustRootError",
        "trusted-root-again": "TrustRootError",
    }
    why = {
        "zero": "not a regular file",
        "fifo": "not a regular file",
        "big": f"{300 * MB} bytes, over the",
    }
    for key, (error, message) in results.items():
        reader, kind = key.split("/")
        if kind == "deep":
            continue
        assert error == expected[reader], (key, error, message)
        assert "\n" not in message, (key, message)
        assert str(files[kind]) in message, (key, message)
        assert why[kind] in message, (key, message)
    # Nested documents: JSON and YAML parsed within bounds, one line with what is wrong.
    assert results["docker-config/deep"][0] == "AuthError"
    assert "nested deeper than 32 levels" in results["docker-config/deep"][1]
    assert results["serve-config/deep"][0] == "ConfigError"
    assert results["serve-config/deep"][1] == f"{files['deep']}: not valid YAML: nested too deeply"


def test_serve_refuses_a_device_as_its_config_in_one_line(tmp_path: Path) -> None:
    for path in ("/dev/zero", str(hostile_files(tmp_path)["fifo"])):
        serve = [sys.executable, "-m", "catalog.cli.main", "serve", "--config", path]
        done = run_limited(serve, 60)
        assert (done.returncode, done.stdout) == (2, ""), done.stderr[-2000:]
        assert done.stderr == f"xregistry: error: cannot read {path}: not a regular file\n"


def test_the_reader_reads_up_to_its_cap(tmp_path: Path) -> None:
    exact = tmp_path / "exact"
    exact.write_bytes(b"a" * 4096)
    assert read_capped(exact, 4096) == b"a" * 4096
    with pytest.raises(FileTooLarge) as over:
        read_capped(exact, 4095)
    assert str(over.value) == "4096 bytes, over the 4095-byte limit"
    with pytest.raises(FileRefused, match="not a regular file"):
        read_capped("/dev/zero", 4096)
    # A command's argument may be a device or a pipe: read as it comes, to the cap.
    with pytest.raises(FileTooLarge, match="4097 bytes, over the 4096-byte limit"):
        read_capped("/dev/zero", 4096, pipes=True)
    with pytest.raises(IsADirectoryError):
        read_capped(tmp_path, 4096, pipes=True)


def test_a_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    # A writer blocked in open(2) wakes when a reader opens the FIFO: the reader's open is seen.
    fifo = hostile_files(tmp_path)["fifo"]
    woke = threading.Event()

    def writer() -> None:
        fd = os.open(fifo, os.O_WRONLY)
        woke.set()
        os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    wchan = Path(f"/proc/self/task/{thread.native_id}/wchan")
    deadline = time.monotonic() + 10
    while wchan.read_text() != "wait_for_partner":  # the writer is in its open, waiting
        assert time.monotonic() < deadline, wchan.read_text()
        time.sleep(0.01)
    with pytest.raises(FileRefused, match="not a regular file"):
        read_capped(fifo, 4096)
    opened = woke.wait(1.0)
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # let the writer go either way
    thread.join(5)
    assert not opened, "the FIFO was opened before it was refused"


def test_a_file_replaced_while_opened_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race between the check and the open: the path names another file once opened.
    checked, other = tmp_path / "checked", tmp_path / "other"
    checked.write_bytes(b"checked")
    other.write_bytes(b"other")
    real_open = os.open

    def swapping_open(path: Any, flags: int, *args: Any) -> int:
        if Path(path) == checked:
            os.replace(other, checked)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", swapping_open)
    with pytest.raises(FileRefused, match="replaced while it was opened"):
        read_capped(checked, 4096)
