"""Durations the observability layer accepts: positive, finite seconds with a sane minimum.

An interval of 1e-300 s would turn a background thread into a busy loop that starves the
monitored program, so every interval and timeout has a floor, stated in its error. The floors
live here, next to the one check that applies them; settings fields take theirs from here too.
"""

from __future__ import annotations

import math

from allele.errors import ValidationError

#: How often the engine samples the system and evaluates alerts, at most.
MIN_COLLECTION_INTERVAL_S = 0.01
#: How often the flusher writes to the store, at most.
MIN_FLUSH_INTERVAL_S = 0.01
#: The shortest retention (points older than this are forgotten).
MIN_RETENTION_S = 60.0
#: The shortest timeout (heartbeats, webhooks, idle connections, shutdown).
MIN_TIMEOUT_S = 0.01
#: The shortest polling or backoff step of a background thread.
MIN_POLL_S = 0.01


def check_seconds(
    value: object, name: str, *, minimum: float, maximum: float = math.inf, unit: str = "s"
) -> float:
    """``value`` as float seconds if it is a finite number in ``[minimum, maximum]``; else a
    ``ValidationError`` naming ``name``, the value and the allowed range."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not minimum <= value <= maximum
    ):
        raise ValidationError(f"{name}={value!r} must be {describe_range(minimum, maximum, unit)}")
    return float(value)


def describe_range(minimum: float, maximum: float = math.inf, unit: str = "s") -> str:
    """The human text of an allowed range of seconds, e.g. ``a number of seconds >= 0.05``."""
    what = "seconds" if unit == "s" else unit
    if math.isinf(maximum):
        return f"a finite number of {what} >= {minimum:g}"
    return f"a number of {what} in [{minimum:g}, {maximum:g}]"
