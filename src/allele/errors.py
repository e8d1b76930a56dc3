"""One small exception hierarchy for the whole package.

Every error names the bad value and says what is allowed. Subclasses also inherit from the
matching built-in (``ValueError``, ``TypeError``...) so callers may catch either.
"""

from __future__ import annotations


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
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyError(
            f"{module!r} is not installed; install it with: pip install 'allele[{extra}]'"
        ) from exc
