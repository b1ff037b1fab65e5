"""Domain errors → one-line messages and exit codes, in one place."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import NoReturn, ParamSpec, TypeVar

from catalog import errors as domain
from catalog.oci import errors as oci

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 4
EXIT_AUTH = 5
EXIT_INVALID_CONTENT = 6
EXIT_SERVER_UNREACHABLE = 7
EXIT_CONFLICT = 8
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C stopped
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, as `yes | head -1` ends under `set -o pipefail`


class ServerUnreachable(domain.CatalogError):
    """``--server`` could not be reached (nothing listening, refused, TLS failed, timed out)."""


class ServerUnavailable(domain.CatalogError):
    """The server was reached and answered UNAVAILABLE: a registry behind it is down."""


class CallerRefused(domain.CatalogError):
    """The server refused the caller or the call (UNAUTHENTICATED, PERMISSION_DENIED)."""


# First match wins: subclasses before their bases.
_EXIT_CODES: list[tuple[type[Exception], int]] = [
    (ServerUnreachable, EXIT_SERVER_UNREACHABLE),
    (domain.CatalogUnreachable, EXIT_SERVER_UNREACHABLE),
    (ServerUnavailable, EXIT_UNAVAILABLE),
    (CallerRefused, EXIT_AUTH),
    (domain.InvalidArgument, EXIT_USAGE),
    (domain.ConfigError, EXIT_USAGE),
    (domain.NotFound, EXIT_NOT_FOUND),
    (domain.AlreadyExists, EXIT_CONFLICT),
    (domain.CatalogError, EXIT_ERROR),
    (oci.InvalidReference, EXIT_USAGE),
    (oci.InvalidDigest, EXIT_USAGE),
    (oci.NotInRegistry, EXIT_NOT_FOUND),
    (oci.LayoutError, EXIT_NOT_FOUND),
    (oci.RegistryUnavailable, EXIT_UNAVAILABLE),
    (oci.TooManyRequests, EXIT_UNAVAILABLE),  # throttled after every retry: UNAVAILABLE too
    (oci.AuthError, EXIT_AUTH),
    (oci.Unauthorized, EXIT_AUTH),
    (oci.Denied, EXIT_AUTH),
    (oci.DigestMismatch, EXIT_INVALID_CONTENT),
    (oci.SizeMismatch, EXIT_INVALID_CONTENT),
    (oci.InvalidManifest, EXIT_INVALID_CONTENT),
    (oci.ManifestTooLarge, EXIT_INVALID_CONTENT),
    (oci.OCIError, EXIT_ERROR),
]


def relayed(error: Exception, kind: str) -> Exception:
    """``error`` (made from a server's status code) judged as the domain exception the server
    named (``oci.DigestMismatch``, see catalog.api.errors.error_kind), so that it exits as the
    same failure on the database would. An unknown name changes nothing."""
    module, _, name = kind.partition(".")
    source = {"catalog": domain, "oci": oci}.get(module)
    cls = getattr(source, name, None) if source is not None and name.isidentifier() else None
    if isinstance(cls, type) and issubclass(cls, domain.CatalogError | oci.OCIError):
        error.relayed_kind = cls  # type: ignore[attr-defined]
    return error


def exit_code(exc: Exception, otherwise: int = EXIT_ERROR) -> int:
    """The exit code of ``exc``; ``otherwise`` for an error of no more precise kind."""
    kind = getattr(exc, "relayed_kind", type(exc))
    for cls, code in _EXIT_CODES:
        if issubclass(kind, cls):
            return otherwise if code == EXIT_ERROR else code
    return otherwise


# A command line's (or a variable's) byte that is not UTF-8 reaches Python as a lone surrogate,
# which no database driver nor protobuf encodes: bad input, whichever of them meets it first.
_UNDECODABLE = (
    "text holds a byte that is not UTF-8 (an argument, a variable or a file name in another"
    " encoding?): give UTF-8 text"
)


def _undecodable(exc: UnicodeEncodeError) -> bool:
    return all(0xD800 <= ord(char) <= 0xDFFF for char in exc.object[exc.start : exc.end])


def _fail(exc: Exception, otherwise: int = EXIT_ERROR) -> NoReturn:
    """``xregistry: error: …`` on stderr, and the exit code of ``exc``."""
    print(f"xregistry: error: {exc}", file=sys.stderr)
    raise SystemExit(exit_code(exc, otherwise)) from None


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a domain error into ``xregistry: error: …`` on stderr and its exit code."""
    return reports_errors_as(EXIT_ERROR)(func)


def reports_errors_as(otherwise: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """:func:`reports_errors` with another code for errors of no precise kind: ``verify`` keeps
    1 for "denied", so its other failures must not exit 1."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except UnicodeEncodeError as exc:
                if not _undecodable(exc):
                    raise
                _fail(domain.InvalidArgument(_UNDECODABLE), otherwise)
            except (oci.OCIError, domain.CatalogError) as exc:
                _fail(exc, otherwise)

        return wrapper

    return decorate


@contextmanager
def shell_endings() -> Iterator[None]:
    """Ctrl-C ends a command with one line and 130, not click's "Aborted!" and 1. A reader
    that stops reading (``| head -1``) ends it quietly with 141, as coreutils end: the reader
    has what it wanted, and a ``pipefail`` script sees what ``cat`` would give it. A broken
    pipe that is not stdout's (a connection, another pipe) stays an error: one line, exit 1."""
    try:
        try:
            yield
        finally:
            if sys.stdout is not None:  # None: started without one (``>&-``), nothing to show
                sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except KeyboardInterrupt:
        print("xregistry: error: interrupted", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError as exc:
        if not _stdout_closed():  # a connection or another pipe: an error as any other
            print(f"xregistry: error: closed while written to: {exc.strerror}", file=sys.stderr)
            raise SystemExit(EXIT_ERROR) from None
        # What is still buffered can go nowhere: /dev/null, so the exit's flush is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(EXIT_CLOSED_PIPE) from None


def _stdout_closed() -> bool:
    """Whether stdout's reader is gone (``poll`` says POLLERR for a pipe or socket whose other
    end closed), rather than some other pipe or connection the command wrote to."""
    import select

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a file: a test's buffer
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    # Linux says POLLERR for a pipe whose reader is gone; macOS and the BSDs say POLLHUP.
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
