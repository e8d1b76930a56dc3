"""Matrix benchmarking: suites, runner, statistics, comparison, storage and reports.

``run_benchmark`` (one parameter combination) and ``run_suite`` (a whole suite) are importable
from here; they load the runner only when first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_benchmark", "run_suite"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from allele.observability.benchmarking import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
