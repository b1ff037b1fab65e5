"""LISTEN/NOTIFY between replicas on a real PostgreSQL: an announcement wakes the listener, and
a listener whose connection is killed connects again."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from catalog.store.db import make_engine, session_factory
from replication.notify import CHANNEL, announce, listen
from tests.harness.postgres import RunningPostgres


async def _woken(wakes: asyncio.Queue[None]) -> None:
    await asyncio.wait_for(wakes.get(), 5.0)


def _announce(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        announce(session)


async def test_announcements_wake_the_listener_and_survive_a_lost_connection(
    postgres: RunningPostgres,
) -> None:
    engine = make_engine(postgres.create_database("notify"))
    sessions = session_factory(engine)
    wakes: asyncio.Queue[None] = asyncio.Queue()
    stop = asyncio.Event()
    listening = asyncio.create_task(
        listen(engine.url, lambda: wakes.put_nowait(None), stop, retry=0.2)
    )
    try:
        await _woken(wakes)  # on connecting: whatever was announced meanwhile
        with sessions.begin() as session:
            announce(session)
            session.rollback()  # an announcement is delivered only with its transaction
        await asyncio.sleep(0.5)
        assert wakes.empty()
        await asyncio.to_thread(_announce, sessions)
        await _woken(wakes)

        with engine.begin() as connection:
            killed = (
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE query = :listen"
                    ),
                    {"listen": f"LISTEN {CHANNEL}"},
                )
                .scalars()
                .all()
            )
        assert killed == [True]
        await _woken(wakes)  # connected again
        await asyncio.to_thread(_announce, sessions)
        await _woken(wakes)
    finally:
        stop.set()
        await asyncio.wait_for(listening, 5)
        engine.dispose()
