"""Anomaly detection speed: ours beside scikit-learn's IsolationForest and river's HalfSpaceTrees.

1. Streaming: points per second of the default streaming detector (``ResidualNoveltyDetector``,
   ``score_one`` + ``learn_one`` per point) and of river's ``HalfSpaceTrees`` on the same series
   (the values of NAB's nyc_taxi, repeated; HalfSpaceTrees gets them scaled into [0, 1] as it
   requires). Target: ours >= 100,000 points/s on one core.
2. Batch: train and score 1,000 samples through ``IsolationForestDetector`` (features of the
   series + isolation forest, fit + score) beside scikit-learn's ``IsolationForest`` fit +
   ``score_samples`` on the same series' features. Target: ours <= 5 ms.

Medians of repeated runs; thread pools pinned to one thread.

    python benchmarks/bench_anomaly.py [--quick]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from allele.observability.ml_analytics.anomaly.detectors import (  # noqa: E402
    AnomalyDetectionConfig,
    IsolationForestDetector,
)
from allele.observability.ml_analytics.anomaly.features import series_features  # noqa: E402
from allele.observability.ml_analytics.anomaly.streaming import (  # noqa: E402
    ResidualNoveltyDetector,
)

NAB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nab"


def _values() -> list[float]:
    path = NAB / "data" / "realKnownCause" / "nyc_taxi.csv"
    if path.exists():
        with path.open() as f:
            return [float(r["value"]) for r in csv.DictReader(f)]
    rng = np.random.default_rng(0)
    return (
        1e4 + 3e3 * np.sin(np.arange(10320) * 2 * np.pi / 48) + rng.normal(0, 500, 10320)
    ).tolist()


def streaming(points: int, repeats: int) -> tuple[float, float]:
    from river.anomaly import HalfSpaceTrees

    base = _values()
    values = (base * (points // len(base) + 1))[:points]
    lo, hi = min(values), max(values)
    scaled = [{"x": (v - lo) / (hi - lo)} for v in values[: points // 10]]
    ours, theirs = [], []
    for _ in range(repeats):
        det = ResidualNoveltyDetector(season_length=48)
        start = time.perf_counter()
        for v in values:
            det.score_one(v)
            det.learn_one(v)
        ours.append(len(values) / (time.perf_counter() - start))
        hst = HalfSpaceTrees(seed=0)
        start = time.perf_counter()
        for x in scaled:
            hst.score_one(x)
            hst.learn_one(x)
        theirs.append(len(scaled) / (time.perf_counter() - start))
    return statistics.median(ours), statistics.median(theirs)


def batch(repeats: int) -> tuple[float, float]:
    from sklearn.ensemble import IsolationForest

    values = np.asarray(_values()[:1030])
    detector = IsolationForestDetector(AnomalyDetectionConfig(random_state=0))
    ours, theirs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        model = detector.fit_series(values)
        scores = detector.score_series(model, values)
        ours.append(time.perf_counter() - start)
        assert len(scores) == 1000
        features, _, _ = series_features(values)
        start = time.perf_counter()
        forest = IsolationForest(random_state=0).fit(features)
        forest.score_samples(features)
        theirs.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer points and repeats")
    args = parser.parse_args()
    points, repeats = (50_000, 3) if args.quick else (200_000, 5)
    ours, theirs = streaming(points, repeats)
    print(
        f"RATIO streaming points/s: ours={ours:,.0f} river_HalfSpaceTrees={theirs:,.0f} "
        f"ours/anchor={ours / theirs:.1f}x (target ours >= 100,000/s: "
        f"{'met' if ours >= 100_000 else 'NOT met'})"
    )
    o, a = batch(repeats * 3)
    print(
        f"RATIO isolation forest train+score 1000 samples: ours={o * 1e3:.2f}ms "
        f"sklearn_IsolationForest={a * 1e3:.2f}ms anchor/ours={a / o:.1f}x "
        f"(target ours <= 5 ms: {'met' if o <= 0.005 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
