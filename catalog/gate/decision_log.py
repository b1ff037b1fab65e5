"""The decisions audit log, written in batches off the request path, never dropped silently.

Every decision is logged. Rows wait at most ``interval`` seconds and go in with one INSERT per
``batch`` rows, each batch its own transaction; a stopping server writes what is left. A
``kill -9`` loses the rows not yet committed: in normal running the last ``interval`` of
decisions and the batch being written — the price of not putting a database commit on every
gate request.

A write that fails (database locked, unreachable) keeps its rows and is tried again with
back-off; the writer never stops. A batch the database refuses for its content is written row
by row, and a row refused alone is logged (reference, digest, verdict, time) and let go.
While writes fail, or one has waited ``stalled_after`` seconds, the log reports a problem (one
log line; the server's health turns NOT_SERVING) until a write goes in again. At most
``capacity`` rows wait: past that :meth:`DecisionLog.add` refuses and the gate denies, saying
why, rather than answering a decision it cannot record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, IntegrityError

from catalog import metrics
from catalog.gate.stored_results import AskedColumns, Queued, record_decisions
from catalog.moments import rfc3339
from catalog.principals import principal_text
from catalog.store.schema import utcnow
from catalog.trust.policy.facts import Decision

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("xregistry.gate.decisions")

# Told of every change of the log's problem (None once writes go in again).
HealthHook = Callable[[str | None], Awaitable[None]]

# CPython's GIL: a thread waiting for it asks the holder to let go only after a switch interval
# passed with no switch at all, and an event loop that releases and retakes the GIL at every
# select() resets that clock. Beside a saturated loop the writer thread, which releases the GIL
# in every database call, got it back only by chance: 350-425 rows/s on a quiet 2-core machine
# (`python -m bench.gate --requests 0 --bundles 0 --log-rows 20000`), and the gate failed
# closed at peak load. While a write runs, the loop thread blocks for a moment every few
# milliseconds, long enough for the writer thread to wake and take the GIL.
_MAKE_WAY = 0.0002  # s the loop thread sleeps: a thread's wake-up, with room
_MAKE_WAY_EVERY = 0.002  # s between those, while a write runs: at most ~10% of the loop


def bound_engine(sessions: sessionmaker[Session] | Engine) -> Engine:
    """The engine ``sessions`` are bound to (or ``sessions``, an engine): the gate and its log
    write and read with Core, and a command given an engine imports no ORM."""
    return sessions if isinstance(sessions, Engine) else sessions.kw["bind"]


class Asked(NamedTuple):
    """Where a decision was asked for, kept with it: a Kubernetes admission review's object
    (``Deployment/web``), namespace, operation, requesting user, and whether it was a dry run."""

    namespace: str | None
    object: str | None
    operation: str | None
    user: str | None
    dry_run: bool = False


class DecisionLog:
    def __init__(
        self,
        sessions: sessionmaker[Session] | Engine,
        *,
        interval: float = 0.05,
        batch: int = 500,
        capacity: int = 20_000,
        stalled_after: float = 5.0,
        retry_delay: tuple[float, float] = (0.1, 2.0),
        write_timeout: float = 10.0,
    ) -> None:
        self._engine = bound_engine(sessions)
        self.interval = interval
        self.batch = batch
        self.capacity = capacity
        self.stalled_after = stalled_after
        self.retry_delay = retry_delay
        self.write_timeout = write_timeout
        self.on_health: HealthHook | None = None
        self.problem: str | None = None
        self._rows: list[Queued] = []
        self._lock = threading.Lock()  # the waiting rows
        self._writing = threading.Lock()  # one writer at a time: rows leave in order
        self._task: asyncio.Task[None] | None = None
        self._making_way: asyncio.Future[None] | None = None  # held: the loop keeps weak refs

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._rows)

    def add(
        self,
        reference: str,
        decision: Decision,
        trust_version: str,
        cached: bool,
        asked: Asked | None = None,
    ) -> bool:
        """Queue the decision's row; False (nothing queued) when ``capacity`` rows wait."""
        return self.add_many(((reference, decision, trust_version, cached),), asked)

    def add_many(
        self, decisions: Sequence[tuple[str, Decision, str, bool]], asked: Asked | None = None
    ) -> bool:
        """Queue the rows of decisions asked for together, as (reference, decision, trust
        version, cached): one time and one principal for them all. False (none queued) when
        they would take the log past ``capacity``."""
        # Read now, in the call that asked: the rows are written later, by the log's flusher.
        shared = (utcnow(), principal_text(), _NOT_ASKED if asked is None else asked_columns(asked))
        # Concatenated: building ``(*decision, shared)`` costs several times more.
        rows = [decision + (shared,) for decision in decisions]  # noqa: RUF005
        with self._lock:
            if len(self._rows) + len(rows) > self.capacity:
                return False
            self._rows.extend(rows)
        if self._task is None:
            self.flush()  # no background writer (the CLI): written now, or the command fails
        return True

    def refusal(self, decision: Decision) -> Decision:
        """What the gate answers instead of ``decision`` when :meth:`add` refused it."""
        reason = (
            f"denied: the decision log cannot be written ({self.problem or 'not keeping up'}; "
            f"{self.capacity} decisions waiting), and no decision is given unrecorded"
        )
        return decision._replace(allowed=False, reasons=(reason,), evidence=())

    def flush(self) -> int:
        """Write the waiting rows, ``batch`` at a time; a failed write leaves its rows waiting,
        in front. Returns how many were written."""
        written = suspect = 0  # suspect: rows of a refused batch, tried one at a time
        with self._writing:
            while True:
                with self._lock:
                    rows = self._rows[: 1 if suspect else self.batch]
                if not rows:
                    return written
                try:
                    self._write(rows)
                    written += len(rows)
                except (IntegrityError, DataError) as exc:
                    if len(rows) > 1:
                        suspect = len(rows)
                        continue
                    # Refused alone, it would be refused forever and hold back every later row.
                    reference, decision, _, _, (decided_at, _, _) = rows[0]
                    metrics.decision_log_failed()
                    log.error(
                        "a decision the database refuses is not recorded: %s %s allowed=%s "
                        "at %s: %s",
                        reference,
                        decision.digest,
                        decision.allowed,
                        rfc3339(decided_at),
                        _one_line(exc),
                    )
                with self._lock:
                    del self._rows[: len(rows)]  # add() only appends: these are still in front
                suspect = max(0, suspect - 1)

    def _write(self, rows: list[Queued]) -> None:
        with self._engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # A locked table fails the write after a while instead of holding it forever.
                ms = int(self.write_timeout * 1000)
                connection.execute(text(f"SET LOCAL statement_timeout = {ms}"))
            record_decisions(connection, rows)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        first, most = self.retry_delay
        delay = first
        me = asyncio.current_task()
        # Not `while True`: Python 3.11's wait_for can swallow a cancellation that arrives as
        # the write finishes, and stop() would then wait for this loop forever.
        while me is None or not me.cancelling():
            await asyncio.sleep(self.interval)
            if not self.waiting:
                continue
            writing = asyncio.ensure_future(asyncio.to_thread(self.flush))
            self._making_way = making_way = asyncio.ensure_future(_make_way(writing))
            try:
                try:
                    await asyncio.wait_for(asyncio.shield(writing), self.stalled_after)
                except TimeoutError:
                    await self._report(f"a write has waited more than {self.stalled_after:g} s")
                    await writing
                finally:
                    # Stopped (cancelled) with the write still in flight: the loop stops making
                    # way for it now, not when that write ends.
                    making_way.cancel()
            except Exception as exc:  # kept, tried again: the writer must not die
                metrics.decision_log_failed()
                await self._report(f"cannot write to the database: {_one_line(exc)}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, most)
                continue
            delay = first
            await self._report(None)

    async def _report(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        if problem is None:
            log.warning("decisions are written again (%d waiting)", self.waiting)
        else:
            log.error(
                "decisions cannot be written (%d waiting, %d at most): %s",
                self.waiting,
                self.capacity,
                problem,
            )
        self.problem = problem
        if self.on_health is not None:
            await self.on_health(problem)

    async def stop(self, drain: float = 10.0) -> None:
        """Stop the writer and write what waits, trying for up to ``drain`` seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        deadline = time.monotonic() + drain
        while True:
            try:
                await asyncio.to_thread(self.flush)
                return
            except Exception as exc:
                if time.monotonic() >= deadline:
                    log.error(
                        "stopping with %d decisions unwritten, lost: %s",
                        self.waiting,
                        _one_line(exc),
                    )
                    return
                await asyncio.sleep(self.retry_delay[0])


async def _make_way(writing: asyncio.Future[Any]) -> None:
    """Let the writer thread have the GIL now and then until ``writing`` is done (see
    ``_MAKE_WAY``): a real sleep of the loop thread, not an await."""
    while not writing.done():
        time.sleep(_MAKE_WAY)  # noqa: ASYNC251 -- blocking on purpose: that is the point
        await asyncio.sleep(_MAKE_WAY_EVERY)


# The columns' widths (migration 0006): a longer value is cut, never refused with its batch.
_WIDTHS = {"namespace": 253, "object_ref": 512, "operation": 16, "requester": 512}


_NOT_ASKED: AskedColumns = (None, None, None, None, None)


def asked_columns(asked: Asked) -> AskedColumns:
    """The row's namespace, object_ref, operation, requester and dry_run for ``asked``."""
    return (
        _cut(asked.namespace, _WIDTHS["namespace"]),
        _cut(asked.object, _WIDTHS["object_ref"]),
        _cut(asked.operation, _WIDTHS["operation"]),
        _cut(asked.user, _WIDTHS["requester"]),
        asked.dry_run,
    )


def _cut(value: str | None, width: int) -> str | None:
    return None if value is None else value[:width]


def _one_line(exc: BaseException) -> str:
    # A database error's first line: the rest quotes the statement and its parameters.
    lines = str(exc).splitlines()
    words = lines[0].strip() if lines else ""
    line = f"{type(exc).__name__}: {words}" if words else type(exc).__name__
    return line[:300]
