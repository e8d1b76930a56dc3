"""Retry-After parsing and the backoff policy."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from allele.agent import (
    AuthenticationError,
    ProtocolError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from allele.agent.retry import RetryPolicy, parse_retry_after

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


POLICY = RetryPolicy(max_retries=3, backoff_initial=1.0, backoff_max=4.0, retry_after_max=30.0)


def test_backoff_doubles_with_equal_jitter_and_caps():
    rng = random.Random(0)
    error = ServerError("x")
    for attempt, base in [(0, 1.0), (1, 2.0), (2, 4.0)]:
        delays = [POLICY.delay(attempt, error, rng) for _ in range(200)]
        assert all(base / 2 <= d <= base for d in delays)  # type: ignore[operator]
        assert max(delays) - min(delays) > base / 4  # type: ignore[operator]  # jitter spreads
    assert POLICY.delay(3, error, rng) is None  # retries exhausted


def test_retry_after_wins_over_backoff_up_to_the_cap():
    rng = random.Random(0)
    assert POLICY.delay(0, RateLimitError("x", retry_after=7.0), rng) == 7.0
    assert POLICY.delay(0, ServerError("x", retry_after=2.0), rng) == 2.0
    assert POLICY.delay(0, RateLimitError("x", retry_after=31.0), rng) is None


@pytest.mark.parametrize("error", [AuthenticationError("x"), ProtocolError("x")])
def test_non_retryable_errors_are_not_retried(error):
    assert POLICY.delay(0, error, random.Random(0)) is None


def test_timeouts_are_retryable():
    assert POLICY.delay(0, ProviderTimeoutError("x"), random.Random(0)) is not None
