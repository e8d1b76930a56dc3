"""Time bounds for store queries: epoch seconds (UTC) from numbers or aware datetimes."""

from __future__ import annotations

import math
from datetime import datetime

from allele.errors import ValidationError

Instant = float | int | datetime


def to_epoch(value: Instant, what: str = "timestamp") -> float:
    """Epoch seconds (UTC) of ``value``: a number of epoch seconds or an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(
                f"{what}={value.isoformat()!r} is a naive datetime; pass a timezone-aware one "
                "(e.g. datetime.now(UTC)) or epoch seconds"
            )
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            f"{what}={value!r} is not a time; pass epoch seconds or an aware datetime"
        )
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValidationError(f"{what}={value!r} must be a finite number of epoch seconds")
    return seconds


def optional_epoch(value: Instant | None, what: str) -> float | None:
    """``to_epoch`` that lets ``None`` (no bound) through."""
    return None if value is None else to_epoch(value, what)
