"""The JSON report: a run's statistics (and comparison) as plain, documented JSON.

Schema ``allele.bench.report/1``::

    {
      "schema": "allele.bench.report/1",
      "suite": {"name", "suite_id", "component", "created_at" (ISO 8601 UTC),
                "config", "machine", "commit"},
      "metric": "time_s",                      # the metric the statistics describe
      "confidence": 0.95,                      # nominal level of the confidence intervals
      "cells": [
        {"key": "population=50", "params": {...}, "status": "ok" | "timeout" | "error",
         "error": str | null,
         "stats": null | {"n", "mean", "stddev", "median", "median_ci": [low, high],
                          "ci_level" (achieved coverage), "mad", "iqr",
                          "percentiles": {"p5", "p25", "p50", "p75", "p95", "p99"},
                          "cv", "outliers": [sample indices outside Tukey's fences]},
         "metrics": {name: number},            # scalar figures of the cell (quality, memory)
         "comparison": null | {see below, one cell}}
      ],
      "comparison": null | {"baseline": {"name", "suite_id"}, "current": {...}, "metric",
                            "alpha", "threshold", "confidence", "higher_is_better",
                            "counts": {verdict: n},
                            "cells": [{"key", "params", "verdict", "baseline_median",
                                       "current_median", "change" (ratio of the medians
                                       - 1), "change_ci": [low, high], "shift" (relative
                                       HL shift), "shift_ci": [low, high], "p_value", "q_value",
                                       "floor", "n_baseline", "n_current", "note"}]}
    }

Numbers that are undefined (a standard deviation of one sample, say) are ``null``; times are in
the metric's unit (seconds for ``time_s``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from allele.observability.benchmarking.compare import Comparison
from allele.observability.benchmarking.model import SuiteRun
from allele.observability.benchmarking.report.summary import summarize_run

SCHEMA = "allele.bench.report/1"


def json_report(run: SuiteRun, comparison: Comparison | None = None) -> dict[str, Any]:
    """The report of ``run`` as a JSON-ready dict (schema in this module's docstring)."""
    summary = summarize_run(run, comparison)
    metrics_of = {c.key: c.metrics for c in run.cells}
    return {
        "schema": SCHEMA,
        "suite": {
            "name": run.name,
            "suite_id": run.suite_id,
            "component": run.component,
            "created_at": run.created_at.isoformat(),
            "config": run.config,
            "machine": run.machine,
            "commit": run.commit,
        },
        "metric": summary.metric,
        "confidence": comparison.confidence if comparison else 0.95,
        "cells": [
            {
                "key": row.key,
                "params": row.params,
                "status": row.status,
                "error": row.error,
                "stats": row.stats.to_dict() if row.stats else None,
                "metrics": {k: _finite(v) for k, v in metrics_of[row.key].items()},
                "comparison": row.comparison.to_dict() if row.comparison else None,
            }
            for row in summary.rows
        ],
        "comparison": comparison.to_dict() if comparison else None,
    }


def write_json_report(
    run: SuiteRun, path: str | Path, comparison: Comparison | None = None
) -> Path:
    """Write the JSON report to ``path`` (strict JSON: no NaN) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(json_report(run, comparison), indent=2, allow_nan=False, default=str),
        encoding="utf-8",
    )
    return out


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
