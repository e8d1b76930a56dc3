"""Where benchmark jobs run: ``local`` worker processes or a ``ray`` cluster."""

from allele.observability.benchmarking.executors.base import (
    Executor,
    Job,
    JobResult,
    create_executor,
)

__all__ = ["Executor", "Job", "JobResult", "create_executor"]
