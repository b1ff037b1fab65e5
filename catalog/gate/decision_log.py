"""The decisions audit log, written in batches off the request path.

Every decision is logged. Rows wait at most ``interval`` seconds (or until ``batch`` of them)
and go in with one INSERT; a stopping server flushes what is left. A crash can lose the rows of
the last interval: the price of not putting a database commit on every gate request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog.gate.stored_results import decision_row
from catalog.store.verifications import record_decisions
from catalog.trust.policy.facts import Decision


class DecisionLog:
    def __init__(
        self, sessions: sessionmaker[Session], *, interval: float = 0.05, batch: int = 500
    ) -> None:
        self.sessions = sessions
        self.interval = interval
        self.batch = batch
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def add(self, reference: str, decision: Decision, trust_version: str, cached: bool) -> None:
        with self._lock:
            self._rows.append(decision_row(reference, decision, trust_version, cached))
            full = len(self._rows) >= self.batch
        if full or self._task is None:
            self.flush()  # no background writer (the CLI), or it is falling behind

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if rows:
            with self.sessions.begin() as session:
                record_decisions(session, rows)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self.flush)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()
