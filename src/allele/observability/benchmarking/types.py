"""The benchmarking vocabulary of the design documents, each name a class of this package.

Where a name is the same thing as a class that already exists, it *is* that class under the
design documents' name (no parallel hierarchy):

- ``BenchmarkType``: the kind of benchmark, one per component (``workloads.BenchmarkType``:
  evolution, kraken_processing, agent_chat, python, function);
- ``ComponentUnderTest``: what a benchmark measures, with its parameters, their checks and its
  workload (``workloads.ComponentUnderTest``);
- ``ParameterSet``: one combination of a parameter matrix (``model.ParameterSet``);
- ``BenchmarkConfig``: a benchmark's whole configuration: component, fixed parameters, matrix,
  run settings (``suites.Suite``);
- ``PerformanceProfile``: the statistics of one cell's samples, median with its interval,
  percentiles, spread, outliers (``stats.SampleStats``);
- ``BenchmarkSuite``: a run of related benchmarks, every cell measured (``model.SuiteRun``);
- ``BenchmarkComparison``: two runs compared cell by cell (``compare.Comparison``);
- ``BenchmarkReport``: what every report shows of a run (``report.summary.RunSummary``, built by
  ``summarize_run``);
- ``ResourceMeasurement``: the memory a process run used (``measure.ResourceMeasurement``;
  ``CellResult.resources``).

>>> from allele.observability.benchmarking.types import BenchmarkConfig, BenchmarkType
>>> config = BenchmarkConfig(name="evo", component=BenchmarkType.EVOLUTION,
...                          matrix={"population_size": [50, 100]})
>>> [cell["population_size"] for cell in config.cells()]
[50, 100]
"""

from __future__ import annotations

from allele.observability.benchmarking.compare import Comparison as BenchmarkComparison
from allele.observability.benchmarking.measure import ResourceMeasurement
from allele.observability.benchmarking.model import ParameterSet
from allele.observability.benchmarking.model import SuiteRun as BenchmarkSuite
from allele.observability.benchmarking.report.summary import RunSummary as BenchmarkReport
from allele.observability.benchmarking.stats import SampleStats as PerformanceProfile
from allele.observability.benchmarking.suites import Suite as BenchmarkConfig
from allele.observability.benchmarking.workloads import BenchmarkType, ComponentUnderTest

__all__ = [
    "BenchmarkComparison",
    "BenchmarkConfig",
    "BenchmarkReport",
    "BenchmarkSuite",
    "BenchmarkType",
    "ComponentUnderTest",
    "ParameterSet",
    "PerformanceProfile",
    "ResourceMeasurement",
]
