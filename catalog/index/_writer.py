"""The crawl's writer thread: runs the calls given to it one at a time, in order, as a
one-thread pool would, and commits its group of repositories (``store.grouped``) once the group
has waited its time for the next call, or is found due between calls."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from catalog.store.grouped import GroupTransaction

_Call = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WriterThread(Executor):
    def __init__(self, group: GroupTransaction, name: str) -> None:
        self.group = group
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        # A commit made while waiting that failed (the group's own failures are its ``failed``):
        # the database failed, and every later call fails with it (the crawl stops).
        self._failed: Exception | None = None
        self._shut = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=name)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:  # as a pool: nothing after shutdown, or its future would never end
            if self._shut:
                raise RuntimeError("the catalog's writer has stopped")
            self._calls.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop after the calls given so far. A group still open then is committed: the crawl
        stopped early (it commits its last group itself), and what its units recorded whole
        is kept, as when each repository was committed alone."""
        with self._lock:
            if not self._shut:
                self._shut = True
                self._calls.put(None)
        if wait:
            self._thread.join()

    def _work(self) -> None:
        while (call := self._next()) is not None:
            future, fn, args, kwargs = call
            if not future.set_running_or_notify_cancel():
                continue
            failed = self._failed or self.group.failed
            if failed is not None:  # each its own traceback, not one growing with every raise
                future.set_exception(failed.with_traceback(None))
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
        try:
            with contextlib.suppress(Exception):  # the crawl already failed: its error is reported
                self.group.commit()
        finally:
            self.group.close()

    def _next(self) -> _Call | None:
        while True:
            due_in = self.group.due_in()
            # Due already: calls that end no unit (reads) may keep coming without a pause, and
            # only a unit's end commits a group that is due (``commit_if_due``).
            if due_in == 0:
                self._commit()
                continue
            try:
                return self._calls.get(timeout=due_in)
            except queue.Empty:
                self._commit()

    def _commit(self) -> None:
        try:
            self.group.commit()
        except Exception as exc:
            self._failed = exc
