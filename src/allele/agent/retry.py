"""When to retry a failed provider request, and how long to wait first.

Retried: errors whose ``retryable`` is true (rate limits, 5xx, timeouts, dropped connections),
at most ``max_retries`` times, and only while no reply text has reached the caller.

Wait before retry ``n`` (0-based): the server's ``Retry-After`` when it sent one (seconds or an
HTTP date); a request for more than ``retry_after_max`` seconds is not waited for -- the error is
raised at once. Otherwise exponential backoff with "equal jitter":
``base = min(backoff_max, backoff_initial * 2**n)``, wait uniformly in ``[base / 2, base]``, so
clients that failed together spread out yet never retry immediately.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from allele.agent.errors import ProviderCallError


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the wait in seconds a ``Retry-After`` header asks for, or None if it is unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry and how long to wait; see the module docstring for the rule."""

    max_retries: int
    backoff_initial: float
    backoff_max: float
    retry_after_max: float

    def delay(self, attempt: int, error: ProviderCallError, rng: random.Random) -> float | None:
        """Return seconds to wait before retrying after failed ``attempt`` (0-based), or None."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.retry_after_max:
                return None
            return error.retry_after
        base = min(self.backoff_max, self.backoff_initial * 2.0**attempt)
        return base / 2.0 + rng.uniform(0.0, base / 2.0)
