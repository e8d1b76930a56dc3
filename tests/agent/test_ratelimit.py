"""Token buckets and the request / token rate limiter, on a manual clock."""

from __future__ import annotations

import pytest

from allele.agent.ratelimit import RateLimiter, TokenBucket


def test_bucket_allows_a_minute_of_burst_then_makes_callers_wait(clock):
    bucket = TokenBucket(60, clock=clock)  # one per second
    assert [bucket.reserve(1) for _ in range(60)] == [0.0] * 60
    assert bucket.reserve(1) == pytest.approx(1.0)
    assert bucket.reserve(1) == pytest.approx(2.0)  # queued behind the previous caller
    clock.now += 2.0
    assert bucket.level == pytest.approx(0.0)


def test_request_larger_than_capacity_waits_for_a_full_bucket_not_forever(clock):
    bucket = TokenBucket(600, clock=clock)
    assert bucket.reserve(10_000) == 0.0  # capped at the capacity
    assert bucket.reserve(600) == pytest.approx(60.0)


def test_refund_is_capped_at_capacity(clock):
    bucket = TokenBucket(100, clock=clock)
    bucket.reserve(50)
    bucket.refund(500)
    assert bucket.level == 100


async def test_limiter_waits_for_the_tighter_of_requests_and_tokens(clock):
    limiter = RateLimiter(
        requests_per_minute=120, tokens_per_minute=600, clock=clock, sleep=clock.sleep
    )
    assert await limiter.acquire(600) == 0.0
    waited = await limiter.acquire(300)  # tokens: 300 short at 10/s -> 30 s
    assert waited == pytest.approx(30.0) and clock.sleeps == [pytest.approx(30.0)]


async def test_settle_refunds_unused_reservation(clock):
    limiter = RateLimiter(None, 1000, clock=clock, sleep=clock.sleep)
    await limiter.acquire(1000)
    limiter.settle(reserved=1000, used=200)
    assert limiter.tokens is not None and limiter.tokens.level == pytest.approx(800)
    assert await limiter.acquire(800) == 0.0


def test_invalid_rate_is_rejected():
    with pytest.raises(ValueError, match="per_minute"):
        TokenBucket(0)
