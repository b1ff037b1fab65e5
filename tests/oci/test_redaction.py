"""Secrets in the registry client's one-line messages: blanked whole, and the pieces a cut echo
shows (a run that begins or ends the secret, or a long one from inside it); a message's own
words that merely share a few characters with a long token (a digest, a date) stay readable,
and a long token costs no search of itself a character."""

from __future__ import annotations

import random
import string
import time

from catalog.oci._http import one_line

_DIGEST = "sha256:" + "ab12" * 16


def _token(size: int, *, holding: str = "") -> str:
    rng = random.Random(7)
    body = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))
    return body[: size // 2] + holding + body[size // 2 :]


def test_the_pieces_a_cut_echo_shows_are_blanked() -> None:
    token = _token(4096)
    message = f"bad line b'Bearer {token[:40]}' then b'{token[-9:]} more' and {token[900:920]}"
    shown = one_line(message, [token])
    assert shown == "bad line b'Bearer ***' then b'*** more' and ***"


def test_words_sharing_a_few_characters_with_a_token_stay_readable() -> None:
    token = _token(65536, holding=f"2026{_DIGEST[7:19]}")
    message = f"manifest {_DIGEST} refused at 2026-12-07T01:02:03Z"
    assert one_line(message, [token]) == message


def test_a_long_token_is_looked_for_quickly() -> None:
    token = _token(65536)
    message = "no such manifest: " + "a" * 600  # no piece of it: every window searched
    started = time.process_time()
    for _ in range(10):
        one_line(message, [token])
    # CPU time: ~2 ms here, where a search of the token a character took ~22.
    assert (time.process_time() - started) / 10 < 0.01
