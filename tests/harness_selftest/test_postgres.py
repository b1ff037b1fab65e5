"""The PostgreSQL runner starts a real server, hands out databases, restarts and stops cleanly."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.harness.postgres import (
    PostgresStartError,
    RunningPostgres,
    postgres_bin_dir,
    run_postgres,
)


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPostgres]:
    with run_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


def _children(pid: int) -> set[int]:
    """Pids whose parent is `pid` (the postmaster's checkpointer, walwriter, backends...)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_two_databases_are_separate(pg: RunningPostgres) -> None:
    url_a = pg.create_database("alpha")
    url_b = pg.create_database("beta")
    assert url_a == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/alpha"
    assert url_b == pg.url("beta")

    for name, value in (("alpha", 1), ("beta", 2)):
        with psycopg.connect(pg.url(name, driver="postgresql")) as conn:
            conn.execute("CREATE TABLE t (v int)")
            conn.execute("INSERT INTO t VALUES (%s)", (value,))

    for url, name, value in ((url_a, "alpha", 1), (url_b, "beta", 2)):
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == name
                assert conn.execute(sa.text("SELECT v FROM t")).scalars().all() == [value]
                encoding = conn.execute(sa.text("SHOW server_encoding")).scalar_one()
                assert encoding == "UTF8"
        finally:
            engine.dispose()

    with pytest.raises(psycopg.errors.DuplicateDatabase):
        pg.create_database("alpha")


def test_server_settings(pg: RunningPostgres) -> None:
    assert pg.password is None
    assert pg.user == "postgres"
    with pg.connect() as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
            (["fsync", "listen_addresses", "port", "server_encoding"],),
        ).fetchall()
    assert dict(rows) == {
        "fsync": "off",
        "listen_addresses": "127.0.0.1",
        "port": str(pg.port),
        "server_encoding": "UTF8",
    }
    assert (pg.datadir / "PG_VERSION").is_file()
    assert "database system is ready to accept connections" in pg.log()


def test_restart_keeps_data_and_stop_leaves_nothing(tmp_path: Path) -> None:
    with run_postgres(tmp_path) as server:
        url = server.create_database("keep")
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE t (v text)"))
                conn.execute(sa.text("INSERT INTO t VALUES ('kept')"))
            held = engine.connect()  # a pooled connection the restart will break

            port, datadir = server.port, server.datadir
            server.restart()
            assert (server.port, server.datadir) == (port, datadir)

            with pytest.raises(sa.exc.OperationalError):
                held.execute(sa.text("SELECT 1"))
            held.close()
            with engine.connect() as conn:  # the pool hands out a fresh, working connection
                assert conn.execute(sa.text("SELECT v FROM t")).scalar_one() == "kept"
        finally:
            engine.dispose()

        assert server.process is not None
        postmaster = server.process
        with server.connect("keep"):  # a backend process too
            children = _children(postmaster.pid)
        assert len(children) >= 3  # checkpointer, background writer, walwriter...
    assert postmaster.poll() is not None
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert not _accepts(port)
    assert not datadir.exists()
    server.stop()  # idempotent


def test_password_auth(tmp_path: Path) -> None:
    secret = "p@ss:/w%rd"
    with run_postgres(tmp_path, password=secret) as server:
        url = server.create_database("secured")
        assert "p%40ss%3A%2Fw%25rd@" in url
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_user")).scalar_one() == "postgres"
        finally:
            engine.dispose()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(
                host=server.host, port=server.port, user="postgres", password="wrong", dbname="x"
            )


def test_start_failure_carries_the_log(tmp_path: Path) -> None:
    with (
        pytest.raises(PostgresStartError, match="invalid value for parameter") as caught,
        run_postgres(tmp_path, settings={"shared_buffers": "lots"}),
    ):
        pass
    assert "postgres exited with" in str(caught.value)


def test_bin_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = postgres_bin_dir()
    assert os.access(found / "postgres", os.X_OK)
    monkeypatch.setenv("XREGISTRY_PG_BIN", str(tmp_path))
    with pytest.raises(PostgresStartError, match="XREGISTRY_PG_BIN"):
        postgres_bin_dir()
    monkeypatch.setenv("XREGISTRY_PG_BIN", str(found))
    assert postgres_bin_dir() == found
