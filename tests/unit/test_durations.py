"""One duration parser, three forms: what each place accepts and refuses, unchanged from the
three parsers it replaced (schedules, ``limits:``, admission's ``?timeout=``), the two rows
marked aside."""

from __future__ import annotations

import pytest

from catalog.api.admission import request_timeout
from catalog.app.limits_config import LimitsSettings
from catalog.durations import GO_TIMEOUT, LIMIT, SCHEDULE
from catalog.schedules import parse_duration

N = None
# text: (schedule, limits, admission timeout) in seconds; None is refused. The schedule form
# is shown as the config reads it (blanks around it stripped first).
TABLE: list[tuple[str, float | None, float | None, float | None]] = [
    ("90s", 90, 90, 90),
    ("15m", 900, 900, 900),
    ("2m", 120, 120, 120),
    ("1h30m", 5400, N, N),
    ("2d12h", 216000, N, N),
    ("1d", 86400, 86400, N),
    ("1h", 3600, 3600, N),
    ("500ms", N, 0.5, 0.5),
    ("100ms", N, 0.1, 0.1),
    ("1.5s", N, 1.5, 1.5),
    ("1.5h", N, 5400, N),
    ("90", N, 90, N),
    ("2.5", N, 2.5, N),
    (" 15m ", 900, 900, N),
    ("15 m", N, 900, N),
    ("1h 30m", N, N, N),
    ("30m1h", N, N, N),
    ("1h1h", N, N, N),
    ("1m30", N, N, N),
    ("", N, N, N),
    ("   ", N, N, N),
    ("m", N, N, N),
    ("s", N, N, N),
    (".5s", N, N, N),
    ("5.s", N, N, N),
    ("-1s", N, N, N),
    ("1e3s", N, N, N),
    ("10S", N, N, N),
    ("1w", N, N, N),
    ("0s", 0, 0, 0),
    ("999999s", 999999, 999999, 999999),
    ("1000000s", N, 1000000, N),
    ("0000001s", N, 1, N),
    ("1.123456789s", N, 1.123456789, 1.123456789),
    ("1.1234567891s", N, 1.1234567891, N),
    # Changed: the old admission pattern ended in `$`, which also matches before a final
    # newline, and `\d` read other scripts' digits (float() too): both refused now.
    ("10s\n", 10, 10, N),
    ("\u0661\u0665s", N, N, N),
]


@pytest.mark.parametrize(("text", "schedule", "limit", "timeout"), TABLE)
def test_each_form_accepts_what_it_did(
    text: str, schedule: float | None, limit: float | None, timeout: float | None
) -> None:
    assert SCHEDULE.seconds(text.strip()) == schedule
    assert same(LIMIT.seconds(text), limit)
    assert same(GO_TIMEOUT.seconds(text), timeout)


def same(got: float | None, want: float | None) -> bool:
    return got == want if want is None or got is None else abs(got - want) < 1e-9


def test_the_callers_word_their_refusals_and_ranges() -> None:
    assert parse_duration(" 1h30m ") == 5400
    for refused in ("1.5h", "0s", "3661d"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(refused)
    assert request_timeout({"timeout": "1.5s"}) == 1.5
    assert request_timeout({}) is None
    with pytest.raises(Exception, match="bad timeout '1h'"):
        request_timeout({"timeout": "1h"})


def test_the_limits_section_reads_the_same_form() -> None:
    limits = LimitsSettings.model_validate({"index_run": "1.5h", "replication_task": 120})
    assert limits.index_run == 5400
    assert limits.replication_task == 120
    with pytest.raises(ValueError, match="is not a duration"):
        LimitsSettings.model_validate({"index_run": "1h30m"})
    with pytest.raises(ValueError, match="outside"):
        LimitsSettings.model_validate({"index_run": "59s"})
