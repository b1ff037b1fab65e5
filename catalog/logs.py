"""Log lines: text or JSON, with the context they were written in, never a credential.

    logs.configure("INFO", "json")                      # serve, and --log-level/--log-format
    with logs.context(registry="local"):                # every line inside carries it
        log.info("indexed %s", name, extra=logs.fields(stats.as_dict()))

JSON lines have stable keys: ``time`` (RFC 3339, UTC, ``Z``), ``level``, ``logger``, ``event``
(the sentence), and when known ``registry``, ``repository``, ``rule``, ``run``, ``digest``,
``principal`` (who the work is for), ``requestId`` (one per API call); ``error`` holds an
exception's type and message, ``traceback`` its stack. Values given with ``extra=`` come as
their own keys (lowerCamelCase); text lines end with them as ``key=value``.

Third-party loggers (APScheduler, aiohttp, grpc, SQLAlchemy, alembic, sigstore…) stay at
WARNING unless the level is DEBUG. Whatever a line says, :class:`Redactor` replaces bearer and
basic credentials, ``token=``/``password=``-style values, URL passwords and JWTs with
``[REDACTED]``: a last line of defence, as nothing should log one in the first place.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, TextIO

from catalog import principals

Format = Literal["text", "json"]
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CONTEXT_KEYS = ("registry", "repository", "rule", "run", "digest")
THIRD_PARTY = (
    "apscheduler",
    "aiohttp",
    "alembic",
    "asyncio",
    "grpc",
    "sqlalchemy",
    "sigstore",
    "tuf",
    "urllib3",
    "httpx",
    "filelock",
)
REDACTED = "[REDACTED]"

_NOTHING: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("xregistry_log_context", default=_NOTHING)
_request_id: ContextVar[str | None] = ContextVar("xregistry_request_id", default=None)


@contextmanager
def context(**values: Any) -> Iterator[None]:
    """Every line logged inside (also on threads and tasks started inside) carries ``values``
    (keys from :data:`CONTEXT_KEYS`; None takes a key away)."""
    token = _context.set(_merged(values))
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: Any) -> None:
    """Like :func:`context` for the rest of the current asyncio task (each task has its own
    copy of the context: nothing leaks to its caller or to other tasks)."""
    _context.set(_merged(values))


def _merged(values: Mapping[str, Any]) -> Mapping[str, Any]:
    unknown = set(values) - set(CONTEXT_KEYS)
    if unknown:
        raise ValueError(f"not a log context key: {', '.join(sorted(unknown))}")
    return {**_context.get(), **values}


@contextmanager
def request(request_id: str) -> Iterator[None]:
    """The lines of one API call carry its ``requestId``."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as ``extra=`` for a result logged as key/values (keys made lowerCamelCase, so
    that they cannot collide with the record's own attributes)."""
    return {_camel(key): value for key, value in values.items()}


def kv(values: Mapping[str, Any]) -> str:
    """``a=1 b=two`` for a sentence: results read as key/values, never a dict's repr."""
    return " ".join(f"{_camel(k)}={_text(v)}" for k, v in values.items())


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' ="\n') else text


# -- redaction -----------------------------------------------------------------------------

_SECRETS = re.compile(
    r"(?P<scheme>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}"
    r"|(?P<key>\b(?:authorization|(?<!bearer )(?:access_|refresh_|id_)?token|password|passwd|secret"
    # "token:ci" is a principal, not a secret: a colon counts after a quote or before a space
    r"|client_secret|api_?key)\b(?:\s*=\s*|[\"']\s*:\s*|\s*:\s+)[\"']?)"
    r"(?!\[REDACTED)(?:(?:bearer|basic)\s+)?"
    r"[^\s\"',;&}]+"
    r"|(?P<userinfo>://[^/\s:@]+:)[^/\s@]+(?=@)",
    re.IGNORECASE,
)
# A JWT, wherever it is (``x-eyJ…`` too), found in a second pass: three dot-separated runs,
# matched only where a run starts (a pattern starting at "eyJ" starts again after every "-" of
# a run, each start rescanning the rest: quadratic), the token's start then looked for in the
# first (:func:`_jwt`). A pass of its own: a match here consumes a dotted name ("a.b.token"),
# which must stay for the key patterns above.
_DOTTED = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    """``text`` with anything credential-shaped replaced by ``[REDACTED]``."""

    def replace(match: re.Match[str]) -> str:
        kept = match.group("scheme") or match.group("key") or match.group("userinfo") or ""
        return kept + REDACTED

    return _DOTTED.sub(_jwt, _SECRETS.sub(replace, text))


def _jwt(match: re.Match[str]) -> str:
    """The dotted run with the JWT in it redacted: one whose header starts the run or follows
    a "-" or "_" in it, with 4 characters at least after its ``eyJ``."""
    run = match.group()
    head = run.partition(".")[0].lower()
    start = head.find("eyj")
    while start != -1:
        if (start == 0 or head[start - 1] in "-_") and len(head) - start >= 7:
            return run[:start] + REDACTED
        start = head.find("eyj", start + 1)
    return run


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


# Attributes every LogRecord has; anything else on a record came with ``extra=``.
_RECORD_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class Redactor(logging.Filter):
    """Renders each record's message, exception and extra values once, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key in _extra_keys(record):
            setattr(record, key, _redacted(getattr(record, key)))
        return True


def _extra_keys(record: logging.LogRecord) -> list[str]:
    return [k for k in record.__dict__ if k not in _RECORD_KEYS and not k.startswith("_")]


# -- formats -------------------------------------------------------------------------------


def _known(record: logging.LogRecord) -> dict[str, Any]:
    """The context keys known where the line was written, then the record's extra values."""
    found: dict[str, Any] = {k: v for k, v in _context.get().items() if v is not None}
    principal = principals.current()
    if principal is not principals.LOCAL:  # LOCAL: nobody in particular asked
        found["principal"] = str(principal)
    request_id = _request_id.get()
    if request_id is not None:
        found["requestId"] = request_id
    for key in _extra_keys(record):
        found[key] = getattr(record, key)
    return found


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _known(record).items():
            line.setdefault(key, value)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["error"] = redact(f"{type(error).__name__}: {error}".splitlines()[0])
        if record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = redact(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{_time(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        known = _known(record)
        if known:
            text += " " + kv(known)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + redact(record.stack_info)
        return text


def configure(level: str = "INFO", format: Format = "text", stream: TextIO | None = None) -> None:
    """One handler on the root logger, writing ``format`` lines to ``stream`` (stderr)."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(Redactor())
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings as lines of the format, not raw stderr
    quiet = logging.NOTSET if level == "DEBUG" else logging.WARNING
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(quiet)
