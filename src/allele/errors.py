"""One small exception hierarchy for the whole package, and the argument checks that raise it.

Every error names the bad value and says what is allowed. Subclasses also inherit from the
matching built-in (``ValueError``, ``ImportError``...) so callers may catch either.
"""

from __future__ import annotations

import math
import numbers


class AlleleError(Exception):
    """Base class of every error raised by Allele."""


class ValidationError(AlleleError, ValueError):
    """A value is out of range, malformed or unknown."""


class ConfigurationError(ValidationError):
    """A setting, settings file or environment variable is invalid."""


class DependencyError(AlleleError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class StoreError(AlleleError):
    """The persistence layer failed (locked, full or unreachable database)."""


class BenchmarkError(AlleleError):
    """A benchmark suite could not be loaded, run or compared."""


class ProviderError(AlleleError):
    """Base class of LLM provider failures (see ``allele.agent.errors``)."""


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise a DependencyError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{module!r} is not installed; install it with: pip install 'allele[{extra}]'"
        ) from exc


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int, or a ValidationError naming ``name`` and ``[low, high]``.

    Booleans are rejected although Python counts them as integers: ``True`` as a population
    size is a bug, not a 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(
            f"{name} must be an integer in [{low}, {high}], got {type(value).__name__} {value!r}"
        )
    if not low <= int(value) <= high:
        raise ValidationError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def check_real(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float, or a ValidationError naming ``name`` and its interval.

    ``low_open`` / ``high_open`` exclude the bound; NaN is always rejected, and an infinite
    bound is only reached when it is closed (``check_real(x, v, 0, math.inf, high_open=True)``
    asks for a finite number >= 0).
    """
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(
            f"{name} must be a number in {interval}, got {type(value).__name__} {value!r}"
        )
    number = float(value)
    above = low < number if low_open else low <= number
    below = number < high if high_open else number <= high
    if math.isnan(number) or not (above and below):
        raise ValidationError(f"{name} must be a number in {interval}, got {value!r}")
    return number
