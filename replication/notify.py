"""Replicas on one PostgreSQL wake each other when replication work appears (LISTEN/NOTIFY), so
a run is shared at once rather than at the other replicas' next poll. Polling stays the
fallback, and the only way on SQLite: nothing here is needed for correctness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import URL, text
from sqlalchemy.orm import Session

CHANNEL = "xregistry_replication"
log = logging.getLogger("xregistry.replication")


def announce(session: Session) -> None:
    """Tell every listening replica, once this transaction commits, that there is work."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def conninfo(url: URL) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(
    url: URL, wake: Callable[[], None], stop: asyncio.Event, *, retry: float = 5.0
) -> None:
    """Call ``wake`` on every announcement until ``stop`` is set; when the database goes away,
    connect again every ``retry`` seconds (the workers poll meanwhile)."""
    import psycopg  # 90 ms: only ``serve`` on PostgreSQL pays for it

    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo(url), autocommit=True
            ) as connection:
                await connection.execute(f"LISTEN {CHANNEL}")
                wake()  # whatever was announced while nobody here listened
                while not stop.is_set():
                    # Returns each second, so that ``stop`` is seen.
                    async for _ in connection.notifies(timeout=1.0):
                        wake()
        except psycopg.Error as exc:
            log.warning("replication: listening for work failed (polling meanwhile): %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=retry)
