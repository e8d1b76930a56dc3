"""Import and export of pytest-benchmark's JSON format (``pytest --benchmark-json``).

Existing pytest-benchmark histories can then be compared with ``allele bench compare``, and
tools that read that format (``pytest-benchmark compare``, CI dashboards) can read our runs.

Mapping (one pytest-benchmark entry <-> one cell):

- cell params = ``{"benchmark": <fullname without its [param] suffix>, **entry["params"]}``;
- ``stats["data"]`` (per-iteration seconds, as pytest-benchmark stores them) <-> the cell's
  ``time_s`` samples; ``stats["iterations"]`` <-> ``inner_loops``. A file written without raw data
  (``--benchmark-save-data`` off) imports with no samples: its summary figures land in the cell's
  ``metrics`` (``median_s``, ``mean_s``...) and a comparison reports the cell as "insufficient";
- ``machine_info`` <-> ``SuiteRun.machine``, ``commit_info`` <-> ``SuiteRun.commit``,
  ``datetime`` <-> ``created_at``; ``group``, ``param``, ``extra_info`` and ``options`` are kept in
  ``config["pytest_benchmark"][fullname]`` so that a round trip gives them back.

The exported ``stats`` follow pytest-benchmark's own definitions (quartiles by its Wikipedia
"method 2/3", outlier counts against 1 stddev and 1.5 IQR, ``ops = rounds / total``). Cells that
failed or have no samples are left out of an export (the format has no place for them).
"""

from __future__ import annotations

import re
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from allele.errors import ValidationError
from allele.observability.benchmarking.model import PRIMARY_METRIC, CellResult, SuiteRun

# The pytest-benchmark JSON layout written here (the field is pytest-benchmark's version).
FORMAT_VERSION = "5.1.0"
BENCHMARK_PARAM = "benchmark"
_SUFFIX = re.compile(r"\[[^\[\]]*\]$")
_SUMMARY_METRICS = {
    "min": "min_s",
    "max": "max_s",
    "mean": "mean_s",
    "stddev": "stddev_s",
    "median": "median_s",
    "q1": "q1_s",
    "q3": "q3_s",
    "iqr": "iqr_s",
    "ops": "ops_per_s",
    "rounds": "rounds",
    "total": "total_s",
}


def is_pytest_benchmark_json(data: Any) -> bool:
    """Whether ``data`` (parsed JSON) looks like a pytest-benchmark file."""
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("benchmarks"), list)
        and "machine_info" in data
    )


def import_pytest_benchmark_json(
    data: Mapping[str, Any], *, name: str | None = None, component: str = "pytest"
) -> SuiteRun:
    """A SuiteRun holding one cell per benchmark of a pytest-benchmark JSON document."""
    if not is_pytest_benchmark_json(data):
        raise ValidationError(
            "not a pytest-benchmark JSON document: expected 'machine_info' and a 'benchmarks' list"
        )
    cells: list[CellResult] = []
    extras: dict[str, Any] = {}
    for index, bench in enumerate(data["benchmarks"]):
        try:
            fullname = str(bench["fullname"])
            stats = bench["stats"]
        except (KeyError, TypeError):
            raise ValidationError(
                f"benchmark #{index} lacks 'fullname' or 'stats'; not pytest-benchmark JSON"
            ) from None
        params = dict(bench.get("params") or {})
        if BENCHMARK_PARAM in params:
            raise ValidationError(
                f"benchmark {fullname!r} has a parameter named {BENCHMARK_PARAM!r}, "
                "which would clash with the cell's benchmark name"
            )
        base = _SUFFIX.sub("", fullname) if bench.get("param") is not None else fullname
        data_points = [float(v) for v in stats.get("data") or []]
        metrics = {
            ours: float(stats[theirs])
            for theirs, ours in _SUMMARY_METRICS.items()
            if isinstance(stats.get(theirs), int | float)
        }
        cells.append(
            CellResult(
                params={BENCHMARK_PARAM: base, **params},
                samples={PRIMARY_METRIC: data_points} if data_points else {},
                metrics=metrics,
                inner_loops=int(stats.get("iterations", 1) or 1),
            )
        )
        extras[fullname] = {
            "name": bench.get("name"),
            "group": bench.get("group"),
            "param": bench.get("param"),
            "extra_info": bench.get("extra_info") or {},
            "options": bench.get("options") or {},
        }
    created = _parse_datetime(data.get("datetime"))
    return SuiteRun(
        name=name or str((data.get("commit_info") or {}).get("project") or "pytest-benchmark"),
        component=component,
        created_at=created,
        config={
            "source": "pytest-benchmark",
            "pytest_benchmark_version": data.get("version"),
            "pytest_benchmark": extras,
        },
        machine=dict(data.get("machine_info") or {}),
        commit=dict(data.get("commit_info") or {}),
        cells=cells,
    )


def export_pytest_benchmark_json(run: SuiteRun, *, include_data: bool = True) -> dict[str, Any]:
    """The pytest-benchmark JSON document (a dict) of ``run``'s measured cells."""
    extras = run.config.get("pytest_benchmark", {}) if isinstance(run.config, Mapping) else {}
    benchmarks = []
    for cell in run.cells:
        data = [float(v) for v in cell.samples.get(PRIMARY_METRIC, [])]
        if cell.status != "ok" or not data:
            continue
        params = {k: v for k, v in cell.params.items() if k != BENCHMARK_PARAM}
        base = str(cell.params.get(BENCHMARK_PARAM, run.name))
        param = "-".join(str(params[k]) for k in params) if params else None
        fullname = f"{base}[{param}]" if param is not None else base
        extra = extras.get(fullname, {})
        short = base.rsplit("::", 1)[-1]
        stats = pytest_benchmark_stats(data)
        if include_data:
            stats["data"] = data
        stats["iterations"] = cell.inner_loops
        benchmarks.append(
            {
                "group": extra.get("group"),
                "name": extra.get("name") or (f"{short}[{param}]" if param is not None else short),
                "fullname": fullname,
                "params": params or None,
                "param": extra.get("param", param),
                "extra_info": extra["extra_info"] if extra else dict(cell.metrics),
                "options": extra["options"] if extra else _options(run),
                "stats": stats,
            }
        )
    return {
        "machine_info": dict(run.machine),
        "commit_info": dict(run.commit),
        "benchmarks": benchmarks,
        "datetime": run.created_at.isoformat(),
        "version": FORMAT_VERSION,
    }


def pytest_benchmark_stats(data: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's ``stats`` figures of ``data`` (without ``data``/``iterations``)."""
    if not data:
        raise ValidationError("pytest-benchmark statistics need at least one sample")
    values = sorted(data)
    rounds = len(values)
    mean = statistics.mean(values)
    stddev = statistics.stdev(values) if rounds > 1 else 0.0
    q1, q3 = _quartiles(values)
    iqr = q3 - q1
    low_fence, high_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    iqr_outliers = sum(1 for v in values if v < low_fence or v > high_fence)
    stddev_outliers = sum(1 for v in values if v < mean - stddev or v > mean + stddev)
    total = sum(data)  # in measurement order, as pytest-benchmark sums it
    if rounds == 1:
        ld15iqr = hd15iqr = values[0]
    else:
        ld15iqr = values[bisect_left(values, low_fence)]
        hd15iqr = values[bisect_right(values, high_fence) - 1]
    return {
        "min": values[0],
        "max": values[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": rounds,
        "median": statistics.median(values),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": ld15iqr,
        "hd15iqr": hd15iqr,
        "ops": rounds / total if total else 0,
        "total": total,
    }


def _quartiles(values: list[float]) -> tuple[float, float]:
    """Q1 and Q3 as pytest-benchmark computes them (Wikipedia's quartile methods 2 and 3)."""
    rounds = len(values)
    if rounds == 1:
        return values[0], values[0]
    if rounds % 2:
        n, q = rounds // 4, rounds % 4
        if q == 1:
            q1 = 0.25 * values[n - 1] + 0.75 * values[n]
            q3 = 0.75 * values[3 * n] + 0.25 * values[3 * n + 1]
        else:
            q1 = 0.75 * values[n] + 0.25 * values[n + 1]
            q3 = 0.25 * values[3 * n + 1] + 0.75 * values[3 * n + 2]
        return q1, q3
    half = rounds // 2
    return statistics.median(values[:half]), statistics.median(values[half:])


def _options(run: SuiteRun) -> dict[str, Any]:
    """The measurement options we know of, under pytest-benchmark's names."""
    options: dict[str, Any] = {"timer": "perf_counter", "disable_gc": False}
    config = run.config if isinstance(run.config, Mapping) else {}
    for ours, theirs in (("min_time", "min_time"), ("warmup", "warmup"), ("runs", "min_rounds")):
        if ours in config:
            options[theirs] = config[ours]
    return options


def _parse_datetime(value: Any) -> datetime:
    if not value:
        raise ValidationError("pytest-benchmark JSON lacks its 'datetime' field")
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(f"unreadable pytest-benchmark datetime {value!r}") from None
    # pytest-benchmark wrote naive UTC timestamps before 4.0.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
