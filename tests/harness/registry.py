"""Run Debian's Distribution 2.8 (`docker-registry serve CONFIG`) with a config of our own."""

from __future__ import annotations

import atexit
import copy
import http.client
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bcrypt
import yaml

from .pki import make_ca, make_server_cert
from .ports import START_ATTEMPTS, free_port
from .tokenserver import TokenServer, run_token_server

AuthMode = Literal["none", "htpasswd", "token"]

READY_TIMEOUT = 10.0
USERNAME = "alice"

# Every registry still running, so an interrupted test run does not leak processes.
_LIVE: set[subprocess.Popen[bytes]] = set()


class RegistryStartError(RuntimeError):
    """The registry exited or never answered; the message carries its log."""


def registry_binary() -> str:
    """The Distribution binary: $XREGISTRY_REGISTRY_BIN, else `docker-registry` on PATH."""
    found = os.environ.get("XREGISTRY_REGISTRY_BIN") or shutil.which("docker-registry")
    if not found:
        raise RegistryStartError("docker-registry not found (apt-get install docker-registry)")
    return found


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `extra` into a copy of `base`: dicts recursively, a None value deletes the key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class RunningRegistry:
    host: str  # "127.0.0.1:PORT", as written in an image reference
    url: str  # "http(s)://127.0.0.1:PORT"
    storage: Path
    username: str | None
    password: str | None
    ca_file: Path | None  # PEM CA that signed the TLS certificate, when tls
    token_server: TokenServer | None
    config_file: Path = field(repr=False)
    log_file: Path = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting this registry's CA (None for plain HTTP)."""
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        """Terminate the process (idempotent); the token server stays with its owner."""
        _terminate(self.process)

    def restart(self) -> None:
        """Stop and start again on the same port and storage (e.g. to test reconnects)."""
        self.stop()
        self.process = _spawn(self.config_file, self.log_file, append=True)
        _wait_ready(self.process, self.url, self.ssl_context(), self.log_file)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    _LIVE.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        _terminate(proc)


def _base_config(port: int, storage: Path) -> dict[str, Any]:
    return {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            # No background upload purging: it would race with long tests.
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),  # fixed per run, avoids a startup warning
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "health": {"storagedriver": {"enabled": False}},
    }


def _write_htpasswd(path: Path, user: str, password: str) -> None:
    # bcrypt only: Distribution silently ignores apr1/sha entries. Cost 4 because the registry
    # re-checks the hash on every request.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{user}:{hashed}\n")


def _probe(url: str, context: ssl.SSLContext | None) -> bool:
    """True once anything answers HTTP on /v2/."""
    host_port = url.split("://", 1)[1]
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection(host_port, timeout=0.5, context=context)
    else:
        conn = http.client.HTTPConnection(host_port, timeout=0.5)
    try:
        conn.request("GET", "/v2/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _spawn(config_file: Path, log_file: Path, *, append: bool = False) -> subprocess.Popen[bytes]:
    # REGISTRY_* variables override the file; drop any the caller's environment has.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    with log_file.open("ab" if append else "wb") as log:
        proc = subprocess.Popen(
            [registry_binary(), "serve", str(config_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C in pytest must not kill it before cleanup
        )
    _LIVE.add(proc)
    return proc


def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, ctx: ssl.SSLContext | None, log: Path
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RegistryStartError(
                f"registry exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
            )
        if _probe(url, ctx):
            return
        time.sleep(0.02)
    _terminate(proc)
    raise RegistryStartError(
        f"registry not answering {url}/v2/ after {READY_TIMEOUT}s:\n"
        f"{log.read_text(errors='replace')}"
    )


@contextmanager
def run_registry(
    workdir: Path,
    *,
    auth: AuthMode = "none",
    tls: bool = False,
    extra: Mapping[str, Any] | None = None,
    token_server: TokenServer | None = None,
    public_prefix: str = "public/",
) -> Iterator[RunningRegistry]:
    """Start a private registry in a fresh directory under `workdir`.

    auth="htpasswd": user alice with a random password. auth="token": a token server (or the one
    given, whose first user becomes `username`) trusted by the registry. `extra` deep-merges into
    the Distribution config (None values delete keys).
    """
    root = Path(tempfile.mkdtemp(prefix="registry-", dir=workdir))
    storage = root / "storage"
    storage.mkdir()
    with ExitStack() as stack:
        username: str | None = None
        password: str | None = None
        ca_file: Path | None = None
        auth_config: dict[str, Any] | None = None
        if auth == "htpasswd":
            username, password = USERNAME, secrets.token_urlsafe(12)
            _write_htpasswd(root / "htpasswd", username, password)
            auth_config = {"htpasswd": {"realm": "xregistry-test", "path": str(root / "htpasswd")}}
        elif auth == "token":
            if token_server is None:
                token_server = stack.enter_context(
                    run_token_server(root / "token", public_prefix=public_prefix)
                )
            username, password = next(iter(token_server.users.items()), (None, None))
            auth_config = token_server.registry_auth_config()
        else:
            token_server = None

        tls_config: dict[str, Any] | None = None
        if tls:
            ca = make_ca(root / "tls")
            server = make_server_cert(root / "tls", ca)
            ca_file = ca.cert_file
            tls_config = {"certificate": str(server.cert_file), "key": str(server.key_file)}
        context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
        scheme = "https" if tls else "http"

        for attempt in range(START_ATTEMPTS):
            port = free_port()
            config = _base_config(port, storage)
            if auth_config is not None:
                config["auth"] = auth_config
            if tls_config is not None:
                config["http"]["tls"] = tls_config
            config = deep_merge(config, extra or {})
            url = f"{scheme}://127.0.0.1:{port}"
            config_file = root / "config.yml"
            config_file.write_text(yaml.safe_dump(config, sort_keys=False))
            proc = _spawn(config_file, root / "registry.log")
            try:
                _wait_ready(proc, url, context, root / "registry.log")
                break
            except RegistryStartError as exc:
                # The port we picked may have been taken in the meantime: try another.
                if "address already in use" not in str(exc) or attempt == START_ATTEMPTS - 1:
                    raise
            except BaseException:
                _terminate(proc)
                raise
        running = RunningRegistry(
            host=f"127.0.0.1:{port}",
            url=url,
            storage=storage,
            username=username,
            password=password,
            ca_file=ca_file,
            token_server=token_server,
            config_file=root / "config.yml",
            log_file=root / "registry.log",
            process=proc,
        )
        try:
            yield running
        finally:
            running.stop()
