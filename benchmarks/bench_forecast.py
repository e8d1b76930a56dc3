"""Forecast quality and speed on the NAB series: ours vs statsforecast's AutoETS, AutoARIMA and
the seasonal naive forecast, on the same rolling origins in the same run.

Every CSV under ``DATA/data/*/`` is a series; its season is one day at its spacing (288 at 5
minutes, 48 at 30 minutes, 24 hourly). From ``--origins`` evenly spaced origins per series each
model sees up to ``--history`` (1,000) points and forecasts ``--horizon`` (24) steps with a 95%
interval. Scores: MASE (mean absolute error over the in-sample seasonal naive error of that
history; a series whose history is constant has no scale and is skipped), the share of actual
values inside the interval, and the wall time of fit+predict per forecast (median). Models are
called in turn on each problem so machine noise hits all alike; threads are pinned to one.

Targets: our mean MASE at most the better statsforecast model's (5% better is the aim),
coverage within [0.90, 0.98], median time at most 10 ms.

Run: ``.venv/bin/python benchmarks/bench_forecast.py [--origins 4] [--only ours,naive]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: honest single-thread timings

import argparse  # noqa: E402
import csv  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from allele.observability.ml_analytics import forecast  # noqa: E402

LEVEL = 95
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nab"
# (lower, upper, mean) for a history, a horizon and a season length.
Model = Callable[[np.ndarray, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def load(path: Path) -> tuple[np.ndarray, int]:
    """The values of one NAB CSV and its daily season at the series' median spacing."""
    stamps: list[float] = []
    values: list[float] = []
    with path.open() as handle:
        for row in csv.DictReader(handle):
            stamps.append(datetime.fromisoformat(row["timestamp"]).timestamp())
            values.append(float(row["value"]))
    spacing = float(np.median(np.diff(stamps)))
    return np.asarray(values), max(1, round(86_400 / spacing))


def ours(y: np.ndarray, h: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = forecast(y, h, level=LEVEL / 100, season_length=m)
    return f.mean, f.lower, f.upper


def _statsforecast(model_class: type) -> Model:
    def run(y: np.ndarray, h: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = model_class(season_length=m).forecast(y=y, h=h, level=[LEVEL])
        return out["mean"], out[f"lo-{LEVEL}"], out[f"hi-{LEVEL}"]

    return run


def anchors() -> dict[str, Model]:
    from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive

    return {
        "naive": _statsforecast(SeasonalNaive),
        "AutoETS": _statsforecast(AutoETS),
        "AutoARIMA": _statsforecast(AutoARIMA),
    }


@dataclass
class Scores:
    mase: list[float] = field(default_factory=list)
    coverage: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    by_series: dict[str, list[float]] = field(default_factory=dict)


def mase_scale(history: np.ndarray, m: int) -> float:
    lag = m if len(history) > m else 1
    return float(np.mean(np.abs(history[lag:] - history[:-lag])))


def problems(
    data: Path, origins: int, history: int, horizon: int
) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """(series, history, actuals, season) for every origin of every series."""
    out = []
    for path in sorted(data.glob("data/*/*.csv")):
        y, m = load(path)
        first = min(history, len(y) - horizon - origins)
        for o in np.linspace(first, len(y) - horizon, origins).astype(int):
            past = y[max(0, o - history) : o]
            if mase_scale(past, m) > 0:
                out.append((f"{path.parent.name}/{path.stem}", past, y[o : o + horizon], m))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--origins", type=int, default=4, help="origins per series")
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--only", default="", help="comma-separated models (default: all)")
    parser.add_argument("--per-series", action="store_true", help="print MASE per series")
    args = parser.parse_args()

    models: dict[str, Model] = {"ours": ours, **anchors()}
    if args.only:
        models = {k: v for k, v in models.items() if k in args.only.split(",")}
    todo = problems(args.data, args.origins, args.history, args.horizon)
    print(f"{len(todo)} forecasts ({args.origins} origins per series, horizon {args.horizon})")
    scores = {name: Scores() for name in models}
    with threadpool_limits(1):
        warm = np.sin(np.arange(300.0) / 4)
        for model in models.values():
            model(warm, args.horizon, 24)  # JIT compilation (numba) is not the fit's cost
        for k, (series, past, actual, m) in enumerate(todo):
            scale = mase_scale(past, m)
            for name, model in models.items():
                start = time.perf_counter()
                mean, lower, upper = model(past, args.horizon, m)
                scores[name].seconds.append(time.perf_counter() - start)
                mase = float(np.mean(np.abs(actual - mean)) / scale)
                scores[name].mase.append(mase)
                scores[name].by_series.setdefault(series, []).append(mase)
                scores[name].coverage.append(float(np.mean((actual >= lower) & (actual <= upper))))
            if (k + 1) % 20 == 0:
                print(f"  {k + 1}/{len(todo)}", flush=True)

    print(f"{'model':<10} {'MASE':>7} {'coverage':>9} {'median ms':>10}")
    for name, s in scores.items():
        median_ms = 1000 * float(np.median(s.seconds))
        print(f"{name:<10} {np.mean(s.mase):7.3f} {np.mean(s.coverage):9.3f} {median_ms:10.2f}")
    if args.per_series:
        for series in scores[next(iter(scores))].by_series:
            cells = " ".join(f"{n}={np.mean(s.by_series[series]):.3f}" for n, s in scores.items())
            print(f"  {series:<55} {cells}")
    if "ours" not in scores:
        return
    mine = scores["ours"]
    for name, s in scores.items():
        if name == "ours":
            continue
        print(
            f"RATIO forecast ours/{name}: MASE {np.mean(mine.mase) / np.mean(s.mase):.3f} "
            f"({np.mean(mine.mase):.3f} vs {np.mean(s.mase):.3f}), "
            f"coverage {np.mean(mine.coverage):.3f} vs {np.mean(s.coverage):.3f}, "
            f"median fit+predict {np.median(mine.seconds) / np.median(s.seconds):.4f} "
            f"({1000 * np.median(mine.seconds):.2f} ms vs {1000 * np.median(s.seconds):.2f} ms)"
        )


if __name__ == "__main__":
    main()
