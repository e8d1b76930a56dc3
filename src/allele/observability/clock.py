"""Clocks for observability: the system clock, and a manual one that tests move by hand.

Everything time-dependent in the collector, the alert manager and the engine asks a ``Clock``
instead of calling ``time`` directly, so that windows, ``for`` durations and cooldowns can be
tested exactly without sleeping.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of wall time (UTC epoch seconds) and monotonic time (seconds, arbitrary origin)."""

    def time(self) -> float:
        """Return wall-clock seconds since the Unix epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Return seconds from a clock that never goes backwards (for durations)."""
        ...


class SystemClock:
    """The real clock: ``time.time()`` and ``time.monotonic()``."""

    __slots__ = ()

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()


class ManualClock:
    """A clock that only moves when told to: ``advance(seconds)`` moves both readings together.

    >>> clock = ManualClock(start=1_700_000_000.0)
    >>> clock.advance(5)
    >>> clock.time()
    1700000005.0
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = float(start)
        self._mono = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must be >= 0: monotonic time never goes back)."""
        if seconds < 0:
            from allele.errors import ValidationError

            raise ValidationError(f"ManualClock.advance needs seconds >= 0, got {seconds!r}")
        with self._lock:
            self._wall += seconds
            self._mono += seconds


def utc_datetime(epoch_s: float) -> datetime:
    """Return the timezone-aware UTC datetime of an epoch timestamp."""
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def parse_utc(value: str | datetime | None) -> datetime | None:
    """Parse an ISO-8601 string (or pass a datetime through) as a timezone-aware UTC datetime.

    A naive value is taken to be UTC already.
    """
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """Return the ISO-8601 text of a UTC datetime, or None."""
    return None if value is None else value.astimezone(UTC).isoformat()
