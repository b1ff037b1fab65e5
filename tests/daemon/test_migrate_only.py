"""``serve --migrate-only``: the schema brought up to date on serve's own database, the data in
it kept, and the process gone without listening (an init container's job: no probe stops it)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog.store import queries
from catalog.store.db import HEAD_REVISION, make_engine, upgrade
from tests.daemon.serving import PASSWORD, serve
from tests.harness.postgres import RunningPostgres
from tests.store.test_migrations import SEED, seed_through


def test_a_catalog_of_the_previous_revision_is_migrated_with_its_rows(
    tmp_path: Path, postgres: RunningPostgres
) -> None:
    url = postgres.create_database("migrate_only")
    engine = make_engine(url)
    previous = max(revision for revision in SEED if revision < HEAD_REVISION)
    seed_through(engine, previous)
    # Its port held, bound and never listening: serve itself would refuse to start.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        done = serve(tmp_path, url, "--migrate-only", "-o", "json", listen=listen)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"schema": HEAD_REVISION, "was": [previous]}
    assert f"migrating the database schema from {previous} to {HEAD_REVISION}" in done.stderr
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert version.all() == [HEAD_REVISION]
        assert connection.execute(text("SELECT name FROM tags")).scalars().all() == ["v1"]
    with Session(engine) as session:
        found = queries.search_packages(session, purl="pkg:npm/left-pad")
        assert [m.package.name for m in found.items] == ["left-pad"]
    engine.dispose()
    again = serve(tmp_path, url, "--migrate-only", listen=listen)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"database schema {HEAD_REVISION}: up to date\n"
    assert not (tmp_path / "from-config.db").exists()  # the variable won over the file


def test_a_new_database_is_created(tmp_path: Path) -> None:
    done = serve(tmp_path, f"sqlite:///{tmp_path / 'new.db'}", "--migrate-only")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"database schema {HEAD_REVISION}: migrated from none\n"
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert version.all() == [HEAD_REVISION]
    engine.dispose()


def test_an_unreachable_database_is_one_line_and_exit_7(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        url = f"postgresql://xregistry:{PASSWORD}@127.0.0.1:{port}/catalog"
        done = serve(tmp_path, url, "--migrate-only")
    assert done.returncode == 7, done.stderr  # as serve's, and the CLI's (README)
    assert done.stderr.startswith("xregistry: error: the database cannot be reached: ")
    assert done.stderr.count("\n") == 1
    assert PASSWORD not in done.stderr + done.stdout
    assert done.stdout == ""


def test_database_on_the_command_line_is_refused(tmp_path: Path) -> None:
    """serve never read --database: it would have run (and migrated) another database."""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    done = serve(
        tmp_path, f"sqlite:///{tmp_path / 'a.db'}", "--migrate-only", before=("--database", other)
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "xregistry: error: serve takes its database from --config's `database:` or"
        " $XREGISTRY_DATABASE_URL, not --database\n"
    )
    assert not list(tmp_path.glob("*.db"))


def test_a_schema_newer_than_this_version_is_one_line_and_exit_7(tmp_path: Path) -> None:
    """The image rolled back after a newer one migrated (docs/deploy.md, Upgrades)."""
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    done = serve(tmp_path, url, "--migrate-only")
    assert done.returncode == 7, done.stderr
    assert done.stderr == (
        "xregistry: error: the database's schema is at 0999, newer than this version of"
        f" xregistry knows (its newest is {HEAD_REVISION}): run the version that migrated it,"
        " or restore the backup taken before that upgrade\n"
    )


def test_the_other_commands_database_variable_is_named_as_ignored(tmp_path: Path) -> None:
    """$XREGISTRY_DATABASE (the CLI's) left exported where serve runs: said, not followed."""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    url = f"sqlite:///{tmp_path / 'served.db'}"
    done = serve(tmp_path, url, "--migrate-only", environ={"XREGISTRY_DATABASE": other})
    assert done.returncode == 0, done.stderr
    assert "$XREGISTRY_DATABASE names the other commands' database, not serve's" in done.stderr
    assert (tmp_path / "served.db").exists()
    assert not (tmp_path / "other.db").exists()
