"""The worker: plans pending runs and executes their tasks, one image per task.

Any number of workers share the runs through the store's leased claims (one per ``serve``
process, or one in the CLI for ``replicate run --wait``). What a task copies is idempotent —
blobs and manifests the destination has are skipped — so a task taken over after its worker
died re-copies nothing that had landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from catalog import logs, metrics
from catalog.errors import CatalogError, FailedPrecondition
from catalog.oci.client import RegistryClient
from catalog.oci.digest import Digest
from catalog.oci.errors import OCIError, RegistryUnavailable
from catalog.oci.open import client_for
from catalog.oci.options import RegistryOptions
from catalog.oci.secrets import Secrets
from catalog.store.models import Registry
from catalog.store.registries import get_registry
from replication import store
from replication.batching import Batcher
from replication.image import Admit, RunState, replicate_image
from replication.planner import RepositoryPlan, plan
from replication.report import RunReport
from replication.runcache import RunCache, RunContext
from replication.spec import RuleSpec, parse_spec
from replication.statuses import FAILED_TASK, OPEN_RUN, RunStatus, TaskStatus
from replication.stores import LayoutStore, RegistryStore, Store, is_layout

if TYPE_CHECKING:
    from catalog.gate.checker import Gate

log = logging.getLogger("xregistry.replication")
T = TypeVar("T")

DEFAULT_LEASE = 30.0
# One image copied, however slowly its registries answer within their own limits: past this the
# task fails, saying so, and its slot is free for the next.
TASK_DEADLINE = 2 * 3600.0
_CONTEXT_IDLE = 60.0  # seconds a run's shared state outlives its last task here


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def outcome(report: RunReport) -> tuple[TaskStatus, str | None]:
    """A one-image report → (task status, reason)."""
    if report.errors:
        error = report.errors[0]
        return TaskStatus(error.outcome), error.reason
    return (TaskStatus.COPIED if report.images.copied else TaskStatus.SKIPPED), None


class Worker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        owner: str | None = None,
        parallel: int = 8,
        lease: float = DEFAULT_LEASE,
        poll: float = 1.0,
        gate: Callable[[], Gate] | None = None,
        secrets: Secrets | None = None,
        task_deadline: float = TASK_DEADLINE,
        limits: RegistryOptions | None = None,
    ) -> None:
        if parallel < 1:
            raise ValueError("a worker needs at least one task slot")
        self.sessions = sessions
        self.owner = owner or default_owner()
        self.parallel = parallel
        self.lease = lease
        self.poll = poll
        self.task_deadline = task_deadline
        self.limits = limits  # of the registry clients it opens (the defaults when None)
        self._gate_factory = gate
        self._gate: Gate | None = None
        self.secrets = secrets or Secrets()  # what registries' credential names resolve to
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._task_runs: dict[int, int] = {}
        self._copying: set[int] = set()  # claimed tasks still copying (the rest: recording)
        self._planning: set[int] = set()
        self._contexts = RunCache(self._build_context, idle=_CONTEXT_IDLE)
        self._clients: dict[tuple[Any, ...], RegistryClient] = {}
        self._stack = AsyncExitStack()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_sweep = 0.0
        self._slots = asyncio.Semaphore(parallel)
        # (a task's outcome to record, its run): tasks finishing together share a transaction.
        self._outcomes: Batcher[tuple[Callable[[Session], bool], int], bool] = Batcher(self._save)

    # -- the loop ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for work now rather than at the next poll (callable from any thread)."""
        if self._wake is None or self._loop is None:
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then hand back the leases of unfinished tasks. A failing
        step (the database away, say) is logged and tried again at the next poll."""
        self._wake, self._loop = asyncio.Event(), asyncio.get_running_loop()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while not stop.is_set():
                # Cleared before the step, not after: a wake during it (a task ending) must
                # not be lost, or the worker would sleep a whole poll with work to do.
                self._wake.clear()
                try:
                    busy = await self._step()
                except Exception:
                    log.exception("replication worker: looking for work failed")
                    busy = False
                if busy and self._room() > 0:
                    continue
                waiters = [asyncio.ensure_future(self._wake.wait())]
                waiters.append(asyncio.ensure_future(stop.wait()))
                await asyncio.wait(waiters, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
        finally:
            heartbeat.cancel()
            await self._shutdown()

    async def finish(self, run_id: int, on_progress: Callable[[], None] | None = None) -> None:
        """Work on ``run_id`` alone until it is finished (``xregistry replicate run --wait``)."""
        self._wake, self._loop = asyncio.Event(), asyncio.get_running_loop()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while True:
                self._wake.clear()  # before the step, as in run()
                await self._step(run_id)
                if on_progress is not None:
                    on_progress()
                if not self._tasks:  # none in flight here: done, or in other workers' hands
                    status = await self._db(lambda s: store.get_run(s, run_id).status)
                    if status not in OPEN_RUN:
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(self.poll, 0.5))
        finally:
            heartbeat.cancel()
            await self._shutdown()

    async def _step(self, run_id: int | None = None) -> bool:
        run, claimed = await self._db(partial(self._claim, run_id=run_id, want=self._room()))
        self._start(claimed)  # before planning, so that the heartbeat keeps their leases
        if run is not None:
            await self._plan(run)
            want = self._room()
            if want > 0:
                self._start(
                    await self._db(
                        lambda s: store.claim_tasks(s, self.owner, want, self.lease, run_id)
                    )
                )
        now = time.monotonic()
        if now >= self._next_sweep:
            # Tasks close their runs; this catches a run whose closing worker died just then.
            self._next_sweep = now + self.poll
            await self._db(lambda s: store.finish_runs(s, [run_id] if run_id else None))
        self._contexts.evict(set(self._task_runs.values()), now)
        return run is not None or bool(claimed)

    def _room(self) -> int:
        """Tasks to claim now. Up to twice the slots are held (the rest wait, leased, for a
        slot), and claims are made once half are free: one claim per many tasks, and a slot
        that frees starts the next task without a trip to the store."""
        if len(self._copying) > self.parallel:
            return 0
        return 2 * self.parallel - len(self._copying)

    def _start(self, claimed: list[store.ClaimedTask]) -> None:
        for task in claimed:
            self._task_runs[task.id] = task.run_id
            self._copying.add(task.id)
            job = asyncio.create_task(self._execute(task))
            self._tasks[task.id] = job
            job.add_done_callback(partial(self._done, task.id))

    def _copied(self, task_id: int) -> None:
        # Its slot is free as soon as the copy is: recording the outcome needs none.
        if task_id in self._copying:
            self._copying.discard(task_id)
            self.wake()

    def _done(self, task_id: int, _job: object = None) -> None:
        self._copied(task_id)
        self._tasks.pop(task_id, None)
        self._task_runs.pop(task_id, None)
        self.wake()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                tasks = list(self._tasks)
                renew = partial(_renew, owner=self.owner, tasks=tasks, runs=list(self._planning))
                held = await self._db(partial(renew, lease=self.lease))
            except Exception:
                log.exception("renewing replication leases failed")
                continue
            for lost in set(tasks) - held:
                job = self._tasks.get(lost)
                if job is not None and lost in self._copying:
                    # Another worker has it now (this one stalled past its lease): stop copying.
                    log.warning("task %d: lease lost to another worker, stopping it here", lost)
                    job.cancel()

    async def _shutdown(self) -> None:
        unfinished = list(self._tasks)  # releasing leaves the recorded ones alone
        for task_id, job in list(self._tasks.items()):
            if task_id in self._copying:
                job.cancel()  # those recording their outcome are let finish
        jobs = list(self._tasks.values())
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        await self._outcomes.drain()
        if unfinished:
            await self._db(lambda s: store.release_tasks(s, self.owner, unfinished))
        self._contexts.clear()
        self._clients.clear()
        await self._stack.aclose()
        self._stack = AsyncExitStack()

    async def _db(self, work: Callable[[Session], T]) -> T:
        """One transaction, off the event loop."""

        def call() -> T:
            with self.sessions.begin() as session:
                return work(session)

        return await asyncio.to_thread(call)

    # -- planning ----------------------------------------------------------------------------

    def _claim(
        self, session: Session, run_id: int | None, want: int
    ) -> tuple[int | None, list[store.ClaimedTask]]:
        """A run to plan, and up to ``want`` tasks to copy."""
        run = store.claim_run(session, self.owner, self.lease, run_id)
        tasks = store.claim_tasks(session, self.owner, want, self.lease, run_id) if want > 0 else []
        return (run.id if run is not None else None), tasks

    async def _plan(self, run_id: int) -> None:
        self._planning.add(run_id)
        try:
            context = await self._contexts.get(run_id)
            planned: list[store.PlannedTask] = []

            def unlisted(repository: str, reason: str) -> None:
                planned.append(store.PlannedTask(repository, repository, "", reason))

            plans = await plan(context.state.source, context.state.rule, unlisted)
            for repo in plans:
                context.known(repo.source, repo.listing)
                planned += [store.PlannedTask(repo.source, repo.destination, t) for t in repo.tags]
            saved = await self._db(lambda s: store.save_plan(s, run_id, self.owner, planned))
            if saved:
                log.info("replication run %d planned: %d tasks", run_id, len(planned))
        except Exception as exc:  # any failure fails the run, never the worker
            if not isinstance(exc, OCIError | CatalogError):
                log.exception("planning replication run %d", run_id)
            error = str(exc) or type(exc).__name__
            await self._db(lambda s: store.fail_run(s, run_id, self.owner, error))
            log.warning("replication run %d failed: %s", run_id, error)
        finally:
            self._planning.discard(run_id)

    async def _build_context(self, run_id: int) -> RunContext:
        spec, source, destination = await self._db(lambda s: _run_settings(s, run_id))
        state = RunState(
            spec.rule(source[0], destination[0]),
            await self._store(source, create=False),
            await self._store(destination, create=True),
            self._admit(spec.policy, source[0]) if spec.policy else None,
        )
        return RunContext(state, spec.name)

    async def _store(self, settings: tuple[Any, ...], *, create: bool) -> Store:
        host = settings[0]
        if is_layout(host):
            # Below a root the configuration names (secrets.layouts), never a caller's path.
            return LayoutStore(f"oci:{self.secrets.layout(host)}", create=create)
        return RegistryStore(await self._client(settings))

    async def _client(self, settings: tuple[Any, ...]) -> RegistryClient:
        client = self._clients.get(settings)
        if client is None:
            host, insecure, ca_file, credentials = settings
            opened = client_for(
                host,
                insecure,
                ca_file,
                credentials,
                secrets=self.secrets,
                max_concurrency=2 * self.parallel,
                limits=self.limits,
            )
            client = await self._stack.enter_async_context(opened)
            self._clients[settings] = client
        return client

    def _admit(self, policy: str, host: str) -> Admit:
        async def admit(repository: str, _tag: str, digest: Digest) -> str | None:
            if self._gate is None:
                if self._gate_factory is None:
                    raise FailedPrecondition("this worker has no gate to check policies with")
                self._gate = self._gate_factory()
            result = await self._gate.check(f"{host}/{repository}@{digest}", policy)
            if result.decision.allowed:
                return None
            return f"policy {policy} denies it: " + "; ".join(result.decision.reasons)

        return admit

    # -- tasks -------------------------------------------------------------------------------

    async def _execute(self, task: store.ClaimedTask) -> None:
        report = RunReport("", "")
        digest: Digest | None = None
        rule = ""  # unknown until the run's context is built
        logs.bind(run=task.run_id, repository=task.source_repository)
        try:
            context = await self._contexts.get(task.run_id)
            rule = context.rule
            logs.bind(rule=rule)
            report = RunReport(context.state.rule.source, context.state.rule.destination)
            listing = await context.listing(task.source_repository)
            repo = RepositoryPlan(
                task.source_repository, task.destination_repository, (task.tag,), listing
            )
            async with self._slots:
                # The deadline counts from the slot: waiting for one is not the copy's fault.
                limit = asyncio.timeout(self.task_deadline)
                try:
                    async with limit:
                        digest = await replicate_image(context.state, repo, task.tag, report)
                except TimeoutError:
                    if not limit.expired():
                        raise
                    deadline = f"stopped at its deadline of {self.task_deadline:g} s"
                    what = f"{task.source_repository}:{task.tag}"
                    raise RegistryUnavailable(f"copying {what}: {deadline}") from None
            status, reason = outcome(report)
        except (OCIError, CatalogError) as exc:
            status, reason = TaskStatus.FAILED, str(exc)
        except Exception as exc:  # a bug must fail the task, not leave it to lease expiry
            log.exception("replication task %d", task.id)
            status, reason = TaskStatus.FAILED, f"{type(exc).__name__}: {exc}"
        self._copied(task.id)
        metrics.replicated(rule, status, report.counts)
        if status in FAILED_TASK:
            log.warning(
                "replication of %s:%s %s: %s", task.source_repository, task.tag, status, reason
            )
        record = partial(
            store.finish_task,
            task_id=task.id,
            owner=self.owner,
            status=status,
            reason=reason,
            digest=str(digest) if digest else None,
            counters=report.counts.as_dict(),
        )
        try:
            saved = await self._outcomes.submit((record, task.run_id))
        except Exception:  # the store is away: the lease runs out and the task is redone
            log.exception("task %d: recording its outcome failed", task.id)
            return
        if not saved:
            log.warning(
                "task %d: not recorded: taken over by another worker, or its run deleted", task.id
            )

    def _save(self, outcomes: list[tuple[Callable[[Session], bool], int]]) -> list[bool]:
        """Record tasks, then close the runs they finished: two transactions, so that of two
        workers finishing a run's last tasks together, the later one sees both."""
        with self.sessions.begin() as session:
            results = [record(session) for record, _ in outcomes]
        with self.sessions.begin() as session:
            _report_ended(session, store.finish_runs(session, {run for _, run in outcomes}))
        return results


def _report_ended(session: Session, closed: list[int]) -> None:
    """A line for each run closed: a failed one as a failure, with its first task's reason."""
    for run_id, totals in store.run_totals(session, closed).items():
        run = store.get_run(session, run_id)
        rule = str(run.spec.get("name", ""))
        outcomes = logs.fields(totals.outcomes)
        with logs.context(rule=rule, run=run_id, repository=None):  # not the last task's
            if run.status != RunStatus.FAILED:
                log.info("replication run %d of %s %s", run_id, rule, run.status, extra=outcomes)
                continue
            failed = sum(totals.outcomes.get(status, 0) for status in FAILED_TASK)
            first = store.failed_tasks(session, run_id, 1)
            why = f"{first[0].source_repository}:{first[0].tag}: {first[0].reason}" if first else ""
            log.warning(
                "replication run %d of %s failed: %d of %d tasks not copied; first %s",
                *(run_id, rule, failed, totals.tasks, why),
                extra=outcomes,
            )


def _renew(
    session: Session, *, owner: str, tasks: list[int], runs: list[int], lease: float
) -> set[int]:
    held = store.renew_leases(session, owner, tasks, lease)
    store.renew_run_leases(session, owner, runs, lease)
    return held


def _run_settings(
    session: Session, run_id: int
) -> tuple[RuleSpec, tuple[Any, ...], tuple[Any, ...]]:
    """The run's rule as it was when the run was made, and its registries' settings now."""
    spec = parse_spec(store.get_run(session, run_id).spec)

    def settings(name: str) -> tuple[Any, ...]:
        row: Registry = get_registry(session, name)
        return (row.host, row.insecure, row.ca_file, row.credentials_ref)

    return spec, settings(spec.source), settings(spec.destination)
