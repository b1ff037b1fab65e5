"""A transparency-log entry body is hostile JSON: nesting or size gives a verdict, not a crash."""

from __future__ import annotations

import pytest

from catalog.trust._internal.entries import check_body
from catalog.trust._internal.signed import Artifact
from catalog.trust._internal.tlog import LogEntry
from catalog.trust.errors import VerificationFailed


def _entry(body: bytes) -> LogEntry:
    return LogEntry(None, None, 1, None, 1, body, None, None)


@pytest.mark.parametrize(
    ("body", "bound"),
    [
        (b"[" * 3000 + b"]" * 3000, "nested deeper"),
        (b"[" + b"0," * 200_000 + b"0]", "JSON values"),
    ],
    ids=["deep", "wide"],
)
def test_a_hostile_body_is_one_verdict_line(body: bytes, bound: str) -> None:
    with pytest.raises(VerificationFailed) as caught:
        check_body(_entry(body), Artifact(b"0" * 32, None, b"sig"), b"sig", None)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "malformed transparency-log entry body" in message
    assert bound in message
    assert "\n" not in message
