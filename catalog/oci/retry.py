"""Retry policy: exponential backoff with full jitter, honouring ``Retry-After``."""

import time
from typing import NamedTuple

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class RetryPolicy(NamedTuple):
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 30.0
    # A Retry-After longer than this is not waited for: the caller gets the error instead.
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        import random  # on a retry only: a run that needs none starts without it (and bisect)

        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime  # an HTTP date is rare: imported for one

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
