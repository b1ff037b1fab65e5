"""A one-shot command's process ended without the interpreter's teardown.

After a command has written its output, Python's exit clears every module and frees its objects
one by one (~9M instructions of a no-change ``replicate once``'s ~414M) in a process about to end
anyway. A command whose objects' finalisers have nothing left to do (every file it wrote closed,
no database connection, no thread of its own) says so with :func:`allow`; the program
(:meth:`catalog.cli.main.RootGroup.__call__`, as the console script and ``python -m`` run it; a
test's ``CliRunner`` calls ``main()`` and is never ended) then ends through :func:`end`, which
keeps the parts of an exit that matter: other threads waited for (by falling back to the normal
exit), the exit handlers run (logging's flush, the import probe of tests/cli), the standard
streams flushed.
"""

from __future__ import annotations

import atexit
import os
import sys

_allowed = False


def allow() -> None:
    """The running command leaves nothing to its objects' finalisers: the process may end
    without them."""
    global _allowed
    _allowed = True


def end(code: object) -> None:
    """End the process at once with ``code`` (a ``SystemExit``'s) when the command allowed it
    and nothing else needs the interpreter's exit; otherwise return, and the caller lets the
    ``SystemExit`` go on (a string to print, another thread to wait for, a stream that cannot
    be flushed: the interpreter tells it as ever)."""
    if not _allowed or not (code is None or isinstance(code, int)) or _other_threads():
        return
    atexit._run_exitfuncs()  # they run once: the interpreter's exit finds none left
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: the process was started without it
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code or 0)


def _other_threads() -> bool:
    """A thread the interpreter's exit would wait for (daemon threads it does not)."""
    import threading

    main = threading.main_thread()
    return any(t is not main and not t.daemon for t in threading.enumerate())
