"""Log lines: JSON with stable keys, text with key=values, context that follows the work, and
no credential whatever a line was given."""

from __future__ import annotations

import io
import json
import logging
import time
import warnings
from collections.abc import Iterator

import pytest

from catalog import logs
from catalog.cli import log_options
from catalog.principals import SERVER, Principal, PrincipalKind, acting_as

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJlLWJ5dGVz"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure() changes the process's root logger: put it back as pytest had it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in logs.THIRD_PARTY}
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, was in quiet.items():
            logging.getLogger(name).setLevel(was)
        logging.captureWarnings(False)


@pytest.fixture
def output() -> io.StringIO:
    stream = io.StringIO()
    logs.configure("DEBUG", "json", stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "secret_line",
    [
        f"calling with Authorization: Bearer {JWT}",
        "header authorization=Bearer s3cr3t-t0ken-value",
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "token=abcdef123456 and more",
        'json {"password": "hunter22", "user": "bob"}',
        "client_secret: 'zzz-secret-zzz'",
        "postgresql://xreg:db-pass-123@db.example:5432/catalog",
        f"a JWT alone {JWT}",
        f"glued after a dash: x-{JWT} and --{JWT}",
        "a dotted key: config.auth.token=abcdef123456",
        "refresh_token=rt-998877 access_token=at-112233",
    ],
)
def test_credentials_never_reach_a_line(output: io.StringIO, secret_line: str) -> None:
    logging.getLogger("xregistry.test").warning("%s", secret_line)
    logging.getLogger("xregistry.test").info("extra", extra={"detail": secret_line})
    text = output.getvalue()
    for secret in (
        JWT,
        "s3cr3t-t0ken-value",
        "dXNlcjpwYXNzd29yZA==",
        "abcdef123456",
        "hunter22",
        "zzz-secret-zzz",
        "db-pass-123",
        "rt-998877",
        "at-112233",
    ):
        assert secret not in text
    assert logs.REDACTED in text


def test_redaction_leaves_digests_names_and_sentences_alone() -> None:
    line = f"copied {DIGEST} to registry.example:5000/shop/api:1.4 (token:ci asked)"
    assert logs.redact(line) == line
    assert logs.redact("https://user@registry.example/v2/") == "https://user@registry.example/v2/"
    why = "GET /metrics from 127.0.0.1: unauthenticated: invalid bearer token: expired"
    assert logs.redact(why) == why


@pytest.mark.parametrize(
    "run", ["-eyjaaaa", "eyJaaaa-", "-eyjaaaa.", "a.", "-a.aaaa", "-bearer x", "token token "]
)
def test_redaction_takes_linear_time_whatever_the_text(run: str) -> None:
    """Text a registry or a document chose reaches log lines (an exception's message, a
    traceback): 160 kB of a run that made each of its positions rescan the rest took 39 s."""
    text = run * (160_000 // len(run))
    started = time.perf_counter()
    logs.redact(text)
    assert time.perf_counter() - started < 1.0


def test_a_traceback_is_redacted_too(output: io.StringIO) -> None:
    try:
        raise RuntimeError(f"refused: Bearer {JWT}")
    except RuntimeError:
        logging.getLogger("xregistry.test").exception("it failed")
    (line,) = lines(output)
    assert line["level"] == "ERROR"
    assert line["error"] == f"RuntimeError: refused: Bearer {logs.REDACTED}"
    assert JWT not in json.dumps(line)
    assert "Traceback" in str(line["traceback"])


def test_json_lines_have_stable_keys_and_the_context(output: io.StringIO) -> None:
    log = logging.getLogger("xregistry.test")
    log.info("plain")
    with logs.context(registry="local", run=7), logs.request("req-1"), acting_as(SERVER):
        log.info("indexed %s", "local", extra=logs.fields({"manifests_new": 3, "errors": 0}))
    with acting_as(Principal(PrincipalKind.TOKEN, "ci")):
        log.warning("asked")
    plain, indexed, asked = lines(output)
    assert set(plain) == {"time", "level", "logger", "event"}
    assert str(plain["time"]).endswith("Z")
    assert len(str(plain["time"])) == len("2026-12-06T10:00:00.000Z")
    assert indexed == {
        "time": indexed["time"],
        "level": "INFO",
        "logger": "xregistry.test",
        "event": "indexed local",
        "registry": "local",
        "run": 7,
        "principal": "server:xregistry",
        "requestId": "req-1",
        "manifestsNew": 3,
        "errors": 0,
    }
    assert asked["principal"] == "token:ci"
    assert "registry" not in asked  # the context ended with its block


def test_text_lines_end_with_key_values_not_reprs() -> None:
    stream = io.StringIO()
    logs.configure("INFO", "text", stream)
    with logs.context(rule="to-eu"):
        logging.getLogger("xregistry.test").info(
            "run %d done", 3, extra=logs.fields({"copied": 2, "reason": "a b"})
        )
    line = stream.getvalue().strip()
    assert line.endswith(' INFO    xregistry.test: run 3 done rule=to-eu copied=2 reason="a b"')
    assert line[:24].endswith("Z")
    assert "{" not in line


def test_python_warnings_become_lines_of_the_format() -> None:
    output = io.StringIO()
    # Here, not in a fixture: pytest puts its own warning handler back between test phases.
    logs.configure("INFO", "json", output)
    warnings.warn("an old option", DeprecationWarning, stacklevel=1)
    (line,) = lines(output)
    assert line["logger"] == "py.warnings"
    assert "DeprecationWarning: an old option" in str(line["event"])


def test_third_party_loggers_stay_at_warning_unless_debug() -> None:
    logs.configure("INFO", "text", io.StringIO())
    assert not logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.INFO)
    assert logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.WARNING)
    assert logging.getLogger("xregistry.serve").isEnabledFor(logging.INFO)
    logs.configure("DEBUG", "text", io.StringIO())
    assert logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.DEBUG)


def test_context_keys_are_the_documented_ones() -> None:
    with (
        pytest.raises(ValueError, match="not a log context key: registy"),
        logs.context(registy="x"),
    ):
        pass
    assert log_options._LEVELS == logs.LEVELS
