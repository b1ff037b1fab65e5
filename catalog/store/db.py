"""Engines and sessions for SQLite (embedded default, WAL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

import migrations
from catalog.errors import CatalogUnreachable, ConfigError, FailedPrecondition

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///xregistry.db"
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
# The newest revision in migrations/versions/ (tests/store/test_migrations.py checks it against
# Alembic's own answer): a command on a current schema reads one row and never imports Alembic.
HEAD_REVISION = "0010"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://…`` as users write it and pick the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception:
        # Neither the URL nor the parser's message (which quotes it): it may hold a password.
        raise ConfigError(
            "invalid database URL: expected sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername not in ("sqlite", "postgresql+psycopg"):
        raise ConfigError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or postgresql://…"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # An index's SBOM package rows land at random places in two indexes: with SQLite's default
    # 2 MiB page cache and a checkpoint after every 1,000 WAL pages, a full index of 2,000
    # images spent most of its writer's CPU re-reading index pages and copying each commit's
    # pages back into the database. Pages are cached as they are read (up to 16 MiB a
    # connection: 64 MiB saved a little more CPU but broke the indexer's memory bound with
    # large documents, 191 -> 280 MiB), and the WAL is checkpointed past ~40 MiB.
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _null(value: None) -> None:
    return value


def make_engine(url: str = DEFAULT_URL) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        import sqlite3  # the driver SQLAlchemy loads for this engine anyway

        # Python 3.11's sqlite3 binds int, float and str as they are but sends None through its
        # adapter registry (a tuple key, a missed look-up, two attribute look-ups: ~3,300
        # instructions a value); found there, it costs ~1,300. A package row often holds one
        # or more (namespace, version, purl): ~17% of a row's insert. Still bound as NULL.
        sqlite3.register_adapter(type(None), _null)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    except ImportError:
        # psycopg without its binary wheel loads the system's libpq when first imported.
        raise FailedPrecondition(
            "PostgreSQL needs libpq: install it (Debian: apt install libpq5) or the binary "
            "driver (pip install 'psycopg[binary]')"
        ) from None
    # Many rows of an INSERT without RETURNING (a crawl's tag events, locations, index children)
    # in one multi-row statement, as those with RETURNING go: psycopg's executemany sends each
    # row as a statement of its own (bench.index on PostgreSQL: the writer thread's CPU 3.5 ->
    # 3.4 ms an image, ~7 statements an image fewer).
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


# Any constant shared by every xregistry process: the key of the start-up advisory lock.
_START_UP_LOCK = 0x78726567  # "xreg"


def exclusive(connection: Connection) -> None:
    """Hold the database's writer lock for the rest of the transaction (call it first in the
    transaction), so that replicas started together on one database migrate and apply their
    config one after the other: the later one finds the work done instead of failing on
    "already exists"."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _START_UP_LOCK})
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def current_revisions(connection: Connection) -> set[str]:
    """The schema's revisions as Alembic records them (empty on a new database)."""
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}


def upgrade(engine: Engine, revision: str = "head") -> set[str]:
    """Bring the schema to ``revision`` (the only way the schema changes); returns the
    revisions it was at (empty: a new database). The writer lock is taken only when there is
    something to do: a command must not wait on a long write."""
    if revision == "head":
        with engine.connect() as connection:  # read-only: no writer lock
            found = current_revisions(connection)
            if found == {HEAD_REVISION}:
                return found
    from alembic import command
    from alembic.script import ScriptDirectory

    config = alembic_config(engine)
    with engine.begin() as connection:
        exclusive(connection)
        found = current_revisions(connection)  # another replica may have migrated meanwhile
        known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
        if newer := found - known:
            # A newer xregistry migrated it (and this one was rolled back to): Alembic would
            # fail with a traceback.
            raise CatalogUnreachable(
                f"the database's schema is at {_shown(newer)}, newer than this version of"
                f" xregistry knows (its newest is {HEAD_REVISION}): run the version that"
                " migrated it, or restore the backup taken before that upgrade"
            )
        target = HEAD_REVISION if revision == "head" else revision
        if found != {target}:
            # Said before it starts: a migration of a large catalog takes minutes.
            log.info("migrating the database schema from %s to %s", _shown(found), target)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return found


def _shown(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) or "none (a new database)"


# PostgreSQL's SQLSTATEs for a wait between transactions the database ended: deadlock_detected,
# serialization_failure.
_LOCK_CONFLICTS = frozenset({"40P01", "40001"})


def lost_a_lock_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is the database ending a transaction's wait for another's rows (a
    deadlock): nothing was wrong with what it wrote, and written again once the other has
    committed, it goes through."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _LOCK_CONFLICTS


def lost_a_race_to_insert(exc: BaseException) -> bool:
    """Whether ``exc`` is a unique key refusing a row another transaction committed first
    (PostgreSQL's unique_violation; SQLite's "UNIQUE constraint failed"), not a row that is
    wrong in itself."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == "23505" or (
        isinstance(orig, sqlite3.IntegrityError) and str(orig).startswith("UNIQUE constraint")
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # The ORM imported here: a command that only reads runs Core on a connection without it.
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)
