"""Timestamp columns hand back aware UTC datetimes on SQLite and PostgreSQL alike, and refuse
naive ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import Registry, table_of
from catalog.store.registries import RegistrySpec, create_registry
from catalog.store.timestamps import NaiveDatetime
from tests.store.conftest import empty_database

WHEN = datetime(2026, 11, 27, 10, 15, 0, 250_000, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


def _add(sessions: sessionmaker[Session], when: datetime) -> None:
    with sessions.begin() as s:
        create_registry(s, RegistrySpec("local", "localhost:5000")).last_index_at = when


def _read(sessions: sessionmaker[Session]) -> datetime:
    with sessions() as s:
        back = s.execute(select(Registry.last_index_at)).scalar_one()
    assert back is not None
    return back


def test_a_round_trip_gives_aware_utc(sessions: sessionmaker[Session]) -> None:
    _add(sessions, WHEN)
    back = _read(sessions)
    assert back == WHEN
    assert back.tzinfo is UTC
    with sessions() as s:  # defaults (utcnow) and Core statements read the same way
        created = s.execute(select(table_of(Registry).c.created_at)).scalar_one()
    assert created.tzinfo is UTC


def test_another_zone_is_stored_as_the_same_instant(sessions: sessionmaker[Session]) -> None:
    _add(sessions, WHEN.astimezone(PLUS_TWO))
    back = _read(sessions)
    assert back == WHEN
    assert back.tzinfo is UTC
    assert back.hour == 10  # not 12: SQLite would keep the wall clock if not converted
    with sessions() as s:  # and a comparison with it is made in UTC too
        later = WHEN.astimezone(PLUS_TWO) + timedelta(minutes=1)
        assert s.scalar(select(Registry.name).where(Registry.last_index_at < later)) == "local"


def test_a_naive_datetime_is_refused(sessions: sessionmaker[Session]) -> None:
    """Refused, not taken as UTC: a naive value is a bug about whose clock it is."""
    naive = WHEN.replace(tzinfo=None)
    with pytest.raises(StatementError) as raised, sessions.begin() as s:
        create_registry(s, RegistrySpec("local", "localhost:5000")).last_index_at = naive
    assert isinstance(raised.value.orig, NaiveDatetime)
    _add(sessions, WHEN)
    with pytest.raises(StatementError), sessions() as s:  # in a comparison as well
        s.scalar(select(Registry.name).where(Registry.last_index_at < naive))
    with pytest.raises(StatementError), sessions.begin() as s:
        s.execute(update(Registry).values(last_index_at=naive))
    assert _read(sessions) == WHEN


def test_rows_written_before_read_as_aware_utc(sessions: sessionmaker[Session]) -> None:
    """Rows as earlier versions (and the migrations' seed data) wrote them: no rewrite needed."""
    _add(sessions, WHEN)
    with sessions.begin() as s:
        if s.bind.dialect.name == "sqlite":  # type: ignore[union-attr]
            stored = "2026-11-27 10:15:00.250000"  # what DateTime wrote before: UTC, no zone
        else:
            stored = "2026-11-27 10:15:00.25+00"
        s.execute(text("UPDATE registries SET last_index_at = :v"), {"v": stored})
    assert _read(sessions) == WHEN
    assert _read(sessions).tzinfo is UTC


def test_postgresql_answers_in_utc_whatever_the_session_zone(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(empty_database("postgresql", tmp_path, request))
    upgrade(engine)
    sessions = session_factory(engine)
    _add(sessions, WHEN)
    with sessions() as s:
        s.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
        raw = s.execute(text("SELECT last_index_at FROM registries")).scalar_one()
        assert raw.utcoffset() == timedelta(hours=9)  # what the driver hands back
        back = s.execute(select(Registry.last_index_at)).scalar_one()
    assert back == WHEN
    assert back.tzinfo is UTC
    engine.dispose()
