"""Run a throw-away PostgreSQL server (Debian's /usr/lib/postgresql/*/bin) on 127.0.0.1.

Each `run_postgres` does a fresh `initdb` (about half a second) into a private temporary folder and
starts `postgres` on a free loopback port with durability turned off for speed (fsync,
synchronous_commit and full_page_writes off; data does survive `restart()`, which is a clean
shutdown). Give each test its own database with `create_database`; share the server per module
or session.

Authentication: the superuser is `postgres`. By default every connection is trusted
(`--auth=trust`, `password` is None). With `run_postgres(..., password="...")` TCP connections
need that password (scram-sha-256); the URLs carry it, percent-encoded.

Running as root: initdb and postgres refuse to run as root, so they run as the `postgres` system
user (Popen's user/group, which is what `runuser -u postgres` would do, minus PAM). Its data lives
in a `tempfile.mkdtemp()` folder chowned to that user, because pytest's tmp_path is 0700 root;
the server log goes to `workdir` (written through an inherited file descriptor) so it outlives
the data. As any other user the binaries run as that user.

Stopping sends SIGINT to the postmaster (exactly what `pg_ctl stop -m fast` does), then SIGQUIT
(immediate shutdown), then SIGKILL to its whole process group; the data folder is then removed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from .ports import START_ATTEMPTS, free_port

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
SUPERUSER = "postgres"
HOST = "127.0.0.1"

# Settings for speed and isolation; `settings=` in run_postgres overrides or adds to them.
DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "jit": "off",  # LLVM compilation makes short test queries slower, never faster
    "max_connections": "200",  # connection pools of several tests at once
}

# Every server still running, so an interrupted test run does not leak processes or folders.
_LIVE: set[RunningPostgres] = set()


class PostgresStartError(RuntimeError):
    """PostgreSQL is missing, or initdb/postgres failed; the message carries the log."""


def postgres_bin_dir() -> Path:
    """The folder holding initdb and postgres: $XREGISTRY_PG_BIN, else the newest
    /usr/lib/postgresql/<version>/bin."""
    override = os.environ.get("XREGISTRY_PG_BIN")
    if override:
        candidates = [Path(override)]
    else:
        found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
        candidates = sorted(found, key=lambda p: int(p.parent.name), reverse=True)
    for bin_dir in candidates:
        if all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "postgres")):
            return bin_dir
    where = f"$XREGISTRY_PG_BIN={override}" if override else "/usr/lib/postgresql/*/bin"
    raise PostgresStartError(
        f"PostgreSQL server binaries (initdb, postgres) not found in {where} "
        "(apt-get install postgresql, or set XREGISTRY_PG_BIN to their folder)"
    )


@dataclass(frozen=True)
class _RunAs:
    """Who runs the server: the postgres system user when we are root, else ourselves."""

    uid: int
    gid: int
    home: str

    @classmethod
    def pick(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls(os.geteuid(), os.getegid(), os.environ.get("HOME", "/"))
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresStartError(
                "running as root needs a 'postgres' system user to run the server as "
                "(Debian's postgresql package creates it)"
            ) from None
        return cls(entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def popen_kwargs(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def env(self) -> dict[str, str]:
        # PG* variables (PGDATA, PGPORT, PGOPTIONS...) would change what initdb/postgres do.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if os.geteuid() == 0:
            env.update(HOME=self.home, USER="postgres", LOGNAME="postgres")
        return env


def _traversable(path: Path, run_as: _RunAs) -> bool:
    """Whether `run_as` may enter every folder from / down to `path`."""
    if os.geteuid() != 0:
        return os.access(path, os.X_OK | os.W_OK)
    try:
        groups = set(os.getgrouplist("postgres", run_as.gid))
    except OSError:
        groups = {run_as.gid}
    for folder in [path, *path.parents]:
        st = folder.stat()
        if st.st_uid == run_as.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _make_private_dir(run_as: _RunAs) -> Path:
    """A fresh 0700 folder owned by `run_as`, under a temp root that user can reach."""
    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if Path(base).is_dir() and _traversable(Path(base), run_as):
            break
    else:
        raise PostgresStartError("no temporary folder the postgres user can reach")
    # Short path on purpose: the Unix socket path inside it is limited to 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="xregistry-pg-", dir=base))
    if os.geteuid() == 0:
        os.chown(root, run_as.uid, run_as.gid)
    return root


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@dataclass(eq=False)
class RunningPostgres:
    host: str
    port: int
    user: str
    password: str | None
    datadir: Path
    log_file: Path = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(repr=False)
    _root: Path = field(repr=False)  # temporary folder holding datadir and the socket
    _command: list[str] = field(repr=False)
    _run_as: _RunAs = field(repr=False)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """A SQLAlchemy URL; driver="postgresql" gives a libpq URI for psycopg.connect()."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"{driver}://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def connect(self, database: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg connection (autocommit unless told otherwise); close it when done."""
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            **kwargs,
        )

    def create_database(self, name: str) -> str:
        """Create an empty database (a copy of template1) and return its SQLAlchemy URL."""
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log(self) -> str:
        return _read(self.log_file)

    def stop(self) -> None:
        """Fast shutdown, escalating to immediate and then SIGKILL (idempotent)."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            for sig, timeout in ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGQUIT, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=timeout)
                    break
                except subprocess.TimeoutExpired:
                    pass
            else:
                # Not reaped yet, so its pid (= the process group id) cannot have been reused.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port and data (e.g. to test reconnects)."""
        self.stop()
        self.process = _spawn(self._command, self.log_file, self._run_as)
        _wait_ready(self)

    def _cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
            _LIVE.discard(self)


@atexit.register
def _kill_leftovers() -> None:
    for pg in list(_LIVE):
        pg._cleanup()


def _spawn(command: list[str], log_file: Path, run_as: _RunAs) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=run_as.env(),
            start_new_session=True,  # a Ctrl-C in pytest must not kill it before cleanup
            **run_as.popen_kwargs(),
        )


def _wait_ready(pg: RunningPostgres) -> None:
    """Return once the server accepts a real connection; raise with its log otherwise."""
    proc = pg.process
    assert proc is not None
    deadline = time.monotonic() + READY_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pg.process = None
            raise PostgresStartError(f"postgres exited with {proc.returncode}:\n{pg.log()}")
        try:
            with pg.connect(connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:  # refused, or "the database system is starting"
            last = exc
        time.sleep(0.02)
    pg.stop()
    raise PostgresStartError(
        f"postgres not accepting connections on {pg.host}:{pg.port} after {READY_TIMEOUT}s "
        f"(last error: {last}):\n{pg.log()}"
    )


def _initdb(bin_dir: Path, root: Path, datadir: Path, run_as: _RunAs, password: str | None) -> None:
    command = [
        str(bin_dir / "initdb"),
        f"--pgdata={datadir}",
        f"--username={SUPERUSER}",
        "--encoding=UTF8",
        "--locale=C",  # works with UTF8 everywhere; no dependency on installed locales
        "--no-sync",
        "--no-instructions",
    ]
    pwfile = root / "pwfile"
    if password is None:
        command.append("--auth=trust")
    else:
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, run_as.uid, run_as.gid)
        command += ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=run_as.env(),
            timeout=120,
            check=False,
            **run_as.popen_kwargs(),
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise PostgresStartError(f"initdb failed with {done.returncode}:\n{output}")


@contextmanager
def run_postgres(
    workdir: Path,
    *,
    password: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> Iterator[RunningPostgres]:
    """Initialise and start a private PostgreSQL server; stop it and delete its data on exit.

    `workdir` receives the server log (in a fresh `postgres-*` folder). `password` switches TCP
    authentication from trust to scram-sha-256. `settings` are extra `-c name=value` options.
    """
    bin_dir = postgres_bin_dir()
    run_as = _RunAs.pick()
    logs = Path(tempfile.mkdtemp(prefix="postgres-", dir=workdir))
    log_file = logs / "postgres.log"
    root = _make_private_dir(run_as)
    datadir = root / "data"
    pg: RunningPostgres | None = None
    try:
        _initdb(bin_dir, root, datadir, run_as, password)
        options = {**DEFAULT_SETTINGS, "unix_socket_directories": str(root), **(settings or {})}
        for attempt in range(START_ATTEMPTS):
            port = free_port()
            command = [str(bin_dir / "postgres"), "-D", str(datadir)]
            for name, value in {**options, "port": str(port)}.items():
                command += ["-c", f"{name}={value}"]
            pg = RunningPostgres(
                host=HOST,
                port=port,
                user=SUPERUSER,
                password=password,
                datadir=datadir,
                log_file=log_file,
                process=None,
                _root=root,
                _command=command,
                _run_as=run_as,
            )
            _LIVE.add(pg)
            pg.process = _spawn(command, log_file, run_as)
            try:
                _wait_ready(pg)
                break
            except PostgresStartError as exc:
                # The port we picked may have been taken in the meantime: try another.
                if (
                    not re.search(r"address already in use", str(exc), re.I)
                    or attempt == START_ATTEMPTS - 1
                ):
                    raise
                _LIVE.discard(pg)
        assert pg is not None
        yield pg
    finally:
        if pg is not None:
            pg._cleanup()
        else:
            shutil.rmtree(root, ignore_errors=True)
