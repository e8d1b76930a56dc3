"""Time bounds for store queries: epoch seconds (UTC) from numbers or aware datetimes."""

from __future__ import annotations

import math
import re
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


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_since(text: str, now: float) -> float:
    """Epoch seconds of ``text``: a span back from ``now`` (``90s``, ``15m``, ``2h``, ``7d``) or
    an ISO 8601 time (a time without an offset is taken as UTC)."""
    from allele.observability.clock import parse_utc

    spec = text.strip()
    match = _AGO.match(spec)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        parsed = parse_utc(spec)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationError(
            f"since={text!r} is neither a span like 90s, 15m, 2h, 7d nor an ISO 8601 time "
            "like 2024-05-01T12:00:00Z"
        )
    return parsed.timestamp()
