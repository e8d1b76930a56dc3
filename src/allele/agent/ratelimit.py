"""Client-side request and token rate limits: token buckets that make callers wait their turn.

Each bucket holds up to one minute's allowance and refills continuously at ``per_minute / 60``
per second. A caller *reserves* what it needs at once (the level may go negative) and then sleeps
until the debt is repaid; reservations are taken in call order without a lock, so waiting is
first come, first served and never starves a large request. A request asks for its estimated
prompt tokens plus its reply budget; once the provider reports real usage the difference is
settled (refunded or charged).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """A continuously refilling allowance of ``per_minute`` units with a one-minute burst."""

    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not per_minute > 0:
            raise ValueError(f"per_minute must be > 0, got {per_minute!r}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._level = self.capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    @property
    def level(self) -> float:
        """Units available now (negative while reservations are waiting)."""
        self._refill()
        return self._level

    def reserve(self, amount: float) -> float:
        """Take ``amount`` (at most the capacity); return the seconds to wait before using it."""
        self._refill()
        self._level -= min(float(amount), self.capacity)
        return 0.0 if self._level >= 0 else -self._level / self.rate

    def refund(self, amount: float) -> None:
        """Give back ``amount`` units (negative charges more), never above the capacity."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits; either may be None (unlimited)."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.requests = (
            TokenBucket(requests_per_minute, clock=clock) if requests_per_minute else None
        )
        self.tokens = TokenBucket(tokens_per_minute, clock=clock) if tokens_per_minute else None
        self._sleep = sleep

    async def acquire(self, tokens: int) -> float:
        """Wait until one request of ``tokens`` tokens is allowed; return the seconds waited."""
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.reserve(1)
        if self.tokens is not None:
            wait = max(wait, self.tokens.reserve(tokens))
        if wait > 0:
            await self._sleep(wait)
        return wait

    def settle(self, reserved: int, used: int) -> None:
        """Correct a reservation of ``reserved`` tokens once ``used`` tokens are known."""
        if self.tokens is not None and used != reserved:
            self.tokens.refund(reserved - used)
