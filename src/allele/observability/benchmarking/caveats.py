"""Warnings that a run's timings are too noisy to trust, said where the numbers are shown.

As pyperf does (``pyperf check``), a result carries its caveats with it instead of leaving the
user to guess from a CV column. ``run_caveats`` checks one run:

- **spread**: a cell whose samples vary more than its comparisons can resolve: a coefficient of
  variation of 10 % or more (pyperf's limit), or a median confidence interval wider than the
  comparison threshold (a 5 % change cannot be told from a median known to +-4 %);
- **load**: the machine's load average, taken when the run started and when it ended, above
  the cores the run left free (the other processes then took CPU time from the workers);
- **parallel workers**: more than one worker at once on a machine with no core to spare for
  them, the runner and the system (workers share caches and memory bandwidth too).

``comparison_caveats`` adds, for a comparison of two runs of the same commit on the same
machine, that the code did not change: what it flags is the machine's noise, which only an A/A
calibration (``allele bench calibrate``) tells apart. The terminal, ``bench check``, Markdown
and the HTML headline all show these same lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from allele.observability.benchmarking.model import PRIMARY_METRIC, SuiteRun

#: A cell whose samples' CV reaches this is flagged, whatever the threshold (pyperf: 10 %).
CV_LIMIT = 0.10
_LISTED = 3  # cells named in a spread warning


def run_caveats(
    run: SuiteRun, *, threshold: float = 0.05, metric: str = PRIMARY_METRIC
) -> list[str]:
    """One line per reason not to trust ``run``'s ``metric`` at face value (empty: none)."""
    from allele.observability.benchmarking.stats import run_stats

    lines: list[str] = []
    grid = run_stats(run, metric)
    if len(grid):
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero median: flagged
            width = (grid.ci_high - grid.ci_low) / grid.median
        noisy = [
            (float(grid.cv[i]), float(width[i]), key)
            for i, key in enumerate(grid.keys)
            if grid.cv[i] >= CV_LIMIT or width[i] > threshold
        ]
        if noisy:
            noisy.sort(reverse=True)
            named = ", ".join(f"{key} (CV {cv:.0%})" for cv, _, key in noisy[:_LISTED])
            more = f" and {len(noisy) - _LISTED} more" if len(noisy) > _LISTED else ""
            lines.append(
                f"spread: {len(noisy)} of {len(grid)} cells vary too much for a "
                f"{threshold:.0%} threshold to mean anything (CV >= {CV_LIMIT:.0%} or a median "
                f"interval wider than {threshold:.0%}): {named}{more}"
            )
    cpus = _cpus(run)
    workers = _workers(run)
    if cpus:
        free = max(cpus - workers, 0)
        loads = [
            (when, float(run.machine[key]))
            for when, key in (("start", "load_average"), ("end", "load_average_end"))
            if isinstance(run.machine.get(key), int | float)
        ]
        # At the start no worker ran yet: compare with the cores the run leaves free. At the
        # end the run's own workers count in the load: compare with every core.
        high = [
            f"{load:.1f} at the {when}"
            for when, load in loads
            if load > (free if when == "start" else cpus) + 0.5
        ]
        if high:
            lines.append(
                f"load: the load average was {' and '.join(high)} of the run, above the "
                f"{free} of {cpus} cores left free for other processes: other work competed "
                "with the workers"
            )
        if workers > 1 and workers >= cpus:
            lines.append(
                f"parallel workers: {workers} workers ran at once on {cpus} cores, leaving no "
                "core to the runner and the system; use --workers 1 (or more cores) for timings "
                "to compare"
            )
    return lines


def comparison_caveats(
    baseline: SuiteRun, current: SuiteRun, *, threshold: float = 0.05, metric: str = PRIMARY_METRIC
) -> list[str]:
    """``run_caveats`` of both runs, and the A/A warning when neither code nor machine changed."""
    lines = run_caveats(current, threshold=threshold, metric=metric)
    for line in run_caveats(baseline, threshold=threshold, metric=metric):
        lines.append(f"baseline {line}")
    if same_code_and_machine(baseline, current):
        lines.append(
            "unchanged: the baseline and this run measured the same commit on the same machine, "
            "so any cell flagged is the machine's noise; run `allele bench calibrate` to measure "
            "each cell's noise floor"
        )
    return lines


def run_or_default_caveats(
    run: SuiteRun, comparison: Any = None, caveats: Sequence[str] | None = None
) -> list[str]:
    """``caveats`` when given, else ``run``'s own at the comparison's threshold (or 5 %)."""
    if caveats is not None:
        return list(caveats)
    threshold = comparison.threshold if comparison is not None else 0.05
    metric = comparison.metric if comparison is not None else PRIMARY_METRIC
    return run_caveats(run, threshold=threshold, metric=metric)


def same_code_and_machine(baseline: SuiteRun, current: SuiteRun) -> bool:
    """True when both runs name one clean commit and one machine (an A/A pair, in effect)."""
    a, b = baseline.commit, current.commit
    if not a.get("id") or a.get("id") != b.get("id") or a.get("dirty") or b.get("dirty"):
        return False
    node = baseline.machine.get("node")
    return bool(node) and node == current.machine.get("node")


def _cpus(run: SuiteRun) -> int:
    cpu: Any = run.machine.get("cpu") or {}
    count = cpu.get("count") if isinstance(cpu, dict) else None
    return int(count) if isinstance(count, int) and count > 0 else 0


def _workers(run: SuiteRun) -> int:
    workers = run.config.get("workers")
    return int(workers) if isinstance(workers, int) and workers > 0 else 1
