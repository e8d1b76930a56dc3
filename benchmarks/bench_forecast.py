"""Forecast quality and speed on the NAB series: ours vs statsforecast's AutoETS, AutoARIMA and
the seasonal naive forecast, on the same rolling origins in the same run.

Every CSV under ``DATA/data/*/`` is a series; its season is one day at its spacing (288 at 5
minutes, 48 at 30 minutes, 24 hourly). From ``--origins`` evenly spaced origins per series each
model sees up to ``--history`` (1,000) points and forecasts ``--horizon`` (24) steps with a 95%
interval. Scores: MASE (mean absolute error over the in-sample seasonal naive error of that
history; a series whose history is constant has no scale and is skipped), the share of actual
values inside the interval, and the wall time of fit+predict per forecast (median). Models are
called in turn on each problem; threads are pinned to one. AutoETS and AutoARIMA each fit in a
worker process (the two concurrently, one per core) with a per-fit cap (``--cap``): a fit past
it is stopped, counted at the cap in the timings and left out of that anchor's MASE comparison,
which is made on the forecasts it finished. AutoARIMA runs only where the season is at most
``--arima-max-season`` (48): at 288 its first fits ran past a 120 s cap, each one.

Targets: our mean MASE at most the better statsforecast model's (5% better is the aim),
coverage within [0.90, 0.98], median time at most 10 ms.

``--neural`` compares the LSTM (trained on each history itself) with our ARIMA and ours instead.

Run: ``.venv/bin/python benchmarks/bench_forecast.py [--stride 2] [--origins 1] [--neural]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: honest single-thread timings

import argparse  # noqa: E402
import csv  # noqa: E402
import multiprocessing as mp  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime  # noqa: E402
from multiprocessing.connection import Connection  # noqa: E402
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


def _estimator(build: Callable[[int], object]) -> Model:
    def run(y: np.ndarray, h: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = build(m).fit(y).predict(h)  # type: ignore[attr-defined]
        return f.mean, f.lower, f.upper

    return run


def neural() -> dict[str, Model]:
    """``--neural``: the LSTM beside our ARIMA (its comparison in the design documents), both
    seasonally adjusted the same way, on the same forecasts."""
    from allele.observability.ml_analytics import ARIMA, LSTMForecaster

    return {
        "ours": ours,
        "arima": _estimator(lambda m: ARIMA(season_length=m, level=LEVEL / 100)),
        "lstm": _estimator(
            lambda m: LSTMForecaster(horizon=24, season_length=m, level=LEVEL / 100)
        ),
    }


def _statsforecast(model_class: type) -> Model:
    def run(y: np.ndarray, h: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = model_class(season_length=m).forecast(y=y, h=h, level=[LEVEL])
        return out["mean"], out[f"lo-{LEVEL}"], out[f"hi-{LEVEL}"]

    return run


ANCHORS = ("naive", "AutoETS", "AutoARIMA")


def anchor(name: str) -> Model:
    """statsforecast's model called ``name`` as a Model."""
    from statsforecast import models

    return _statsforecast({"naive": models.SeasonalNaive}.get(name) or getattr(models, name))


def _serve(name: str, conn: Connection) -> None:
    # A worker process: pins its threads, compiles the model, then fits what it is sent.
    with threadpool_limits(1):
        model = anchor(name)
        model(np.sin(np.arange(300.0) / 4), 24, 24)  # numba compilation is not the fit's cost
        conn.send("ready")
        while True:
            try:
                y, h, m = conn.recv()
            except EOFError:  # the benchmark is done
                return
            start = time.perf_counter()
            result = model(y, h, m)
            conn.send((time.perf_counter() - start, result))


class CappedModel:
    """An anchor in its own process, so that a fit running past ``cap`` seconds can be stopped
    (AutoARIMA with a 288-sample season can run for many minutes) and the next one started."""

    def __init__(self, name: str, cap: float) -> None:
        self.name, self.cap = name, cap
        self._start()

    def _start(self) -> None:
        self.conn, child = mp.Pipe()
        self.process = mp.get_context("spawn").Process(
            target=_serve, args=(self.name, child), daemon=True
        )
        self.process.start()
        self.conn.recv()

    def submit(self, y: np.ndarray, h: int, m: int) -> None:
        self.conn.send((y, h, m))
        self.sent = time.perf_counter()

    def result(self) -> tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
        """(seconds, forecast), or None when the fit ran past the cap (the worker is replaced)."""
        left = self.cap - (time.perf_counter() - self.sent)
        if self.conn.poll(max(left, 0.0)):
            return self.conn.recv()  # type: ignore[no-any-return]
        self.process.kill()
        self.process.join()
        self._start()
        return None


@dataclass
class Scores:
    # Per problem (index into the problem list); a capped fit leaves its problem out.
    mase: dict[int, float] = field(default_factory=dict)
    coverage: dict[int, float] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    capped: int = 0

    def record(self, k: int, actual: np.ndarray, forecast: tuple, scale: float) -> None:
        mean, lower, upper = forecast
        self.mase[k] = float(np.mean(np.abs(actual - mean)) / scale)
        self.coverage[k] = float(np.mean((actual >= lower) & (actual <= upper)))


def mase_scale(history: np.ndarray, m: int) -> float:
    lag = m if len(history) > m else 1
    return float(np.mean(np.abs(history[lag:] - history[:-lag])))


def problems(
    data: Path, origins: int, history: int, horizon: int, stride: int = 1
) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """(series, history, actuals, season) for every origin of every ``stride``-th series."""
    out = []
    for path in sorted(data.glob("data/*/*.csv"))[::stride]:
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
    parser.add_argument("--origins", type=int, default=1, help="origins per series")
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--only", default="", help="comma-separated models (default: all)")
    parser.add_argument(
        "--cap", type=float, default=120.0, help="seconds an AutoETS/AutoARIMA fit may take"
    )
    parser.add_argument("--per-series", action="store_true", help="print MASE per forecast")
    parser.add_argument("--stride", type=int, default=1, help="every STRIDE-th series only")
    parser.add_argument(
        "--neural", action="store_true", help="LSTM vs ARIMA (and ours) instead of the anchors"
    )
    parser.add_argument(
        "--arima-max-season",
        type=int,
        default=48,
        help="AutoARIMA only on seasons up to this (at 288 its fits run for many minutes)",
    )
    args = parser.parse_args()

    names = ["ours", "arima", "lstm"] if args.neural else ["ours", *ANCHORS]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    todo = problems(args.data, args.origins, args.history, args.horizon, args.stride)
    print(f"{len(todo)} forecasts ({args.origins} origins per series, horizon {args.horizon})")
    local: dict[str, Model] = neural() if args.neural else {"ours": ours, "naive": anchor("naive")}
    # The slow anchors fit in worker processes, concurrently with each other (two cores).
    workers = {n: CappedModel(n, args.cap) for n in names if n not in local}
    scores = {name: Scores() for name in names}
    with threadpool_limits(1):
        for name in names:
            if name in local:
                local[name](np.sin(np.arange(300.0) / 4), args.horizon, 24)  # warm-up
        for k, (series, past, actual, m) in enumerate(todo):
            scale = mase_scale(past, m)
            # The in-process models run while the workers are idle, so none times another's load.
            for name in names:
                if name in local:
                    start = time.perf_counter()
                    out = local[name](past, args.horizon, m)
                    scores[name].seconds.append(time.perf_counter() - start)
                    scores[name].record(k, actual, out, scale)
            skip = {"AutoARIMA"} if m > args.arima_max_season else set()
            for name, worker in workers.items():
                if name not in skip:
                    worker.submit(past, args.horizon, m)
            for name, worker in workers.items():
                if name in skip:
                    continue
                done = worker.result()
                if done is None:
                    scores[name].capped += 1
                    scores[name].seconds.append(args.cap)
                else:
                    scores[name].seconds.append(done[0])
                    scores[name].record(k, actual, done[1], scale)
            if args.per_series:
                cells = " ".join(
                    f"{n}={scores[n].mase[k]:.3f}" if k in scores[n].mase else f"{n}=-"
                    for n in names
                )
                print(f"  {series:<52} m={m:<4} {cells}", flush=True)

    print(f"{'model':<10} {'MASE':>7} {'coverage':>9} {'median ms':>10} {'capped':>7}")
    for name, s in scores.items():
        if not s.seconds:
            print(f"{name:<10} not run on these seasons")
            continue
        if not s.mase:
            print(f"{name:<10} {'-':>7} {'-':>9} {1000 * np.median(s.seconds):10.2f} {s.capped:7d}")
            continue
        median_ms = 1000 * float(np.median(s.seconds))
        print(
            f"{name:<10} {np.mean(list(s.mase.values())):7.3f} "
            f"{np.mean(list(s.coverage.values())):9.3f} {median_ms:10.2f} {s.capped:7d}"
        )
    if "ours" not in scores:
        return
    pairs = [("ours", n) for n in scores if n != "ours"]
    if args.neural:
        pairs = [("lstm", "arima"), ("ours", "lstm")]
    for base, name in pairs:
        mine, s = scores[base], scores[name]
        # Compared on the forecasts the anchor finished within the cap (its time counts the cap).
        shared = sorted(s.mase)
        if not s.seconds:
            continue
        if not shared:
            print(f"RATIO forecast {base}/{name}: every fit ran past the {args.cap:.0f} s cap")
            continue
        ours_mase = np.mean([mine.mase[k] for k in shared])
        their_mase = np.mean([s.mase[k] for k in shared])
        ours_cov = np.mean([mine.coverage[k] for k in shared])
        their_cov = np.mean([s.coverage[k] for k in shared])
        t_ours, t_theirs = np.median(mine.seconds), np.median(s.seconds)
        print(
            f"RATIO forecast {base}/{name} on {len(shared)}/{len(todo)} forecasts: "
            f"MASE {ours_mase / their_mase:.3f} ({ours_mase:.3f} vs {their_mase:.3f}), "
            f"coverage {ours_cov:.3f} vs {their_cov:.3f}, median fit+predict "
            f"{t_ours / t_theirs:.4f} ({1000 * t_ours:.2f} ms vs {1000 * t_theirs:.2f} ms"
            f"{', capped ' + str(s.capped) if s.capped else ''})"
        )


if __name__ == "__main__":
    main()
