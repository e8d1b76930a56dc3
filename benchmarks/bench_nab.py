"""NAB quality and speed: our default detector on the NAB dev set, scored by NAB's rules.

Runs the harness (``allele analytics nab``) over ``../shared/data/nab`` with our default
streaming detector, prints NAB's normalised scores (all three profiles, each category) beside
the published detectors' scores on the same 35 series, and times the whole run (load, detect,
write NAB's result files, score) against river's HalfSpaceTrees detecting the same corpus, in
CPU seconds of this process (one core; on a loaded machine wall time also counts other
processes' turns, printed beside).

    python benchmarks/bench_nab.py [--detector NAME] [--output DIR]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from allele.observability.ml_analytics.anomaly.nab import (  # noqa: E402
    DEFAULT_DETECTOR,
    PUBLISHED,
    format_report,
    load_corpus,
    run_nab,
)

NAB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nab"


def river_seconds(data: Path, labels: Path) -> float:
    """CPU seconds for river's HalfSpaceTrees to score every row of the corpus (values scaled by
    each series' running range, as it needs inputs in [0, 1])."""
    from river.anomaly import HalfSpaceTrees

    corpus = load_corpus(data, labels)
    start = time.process_time()
    for series in corpus:
        hst = HalfSpaceTrees(seed=0)
        lo = hi = float(series.values[0])
        for v in series.values.tolist():
            lo, hi = min(lo, v), max(hi, v)
            x = {"x": (v - lo) / (hi - lo) if hi > lo else 0.5}
            hst.score_one(x)
            hst.learn_one(x)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--detector", default=DEFAULT_DETECTOR)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    data, labels = NAB / "data", NAB / "labels" / "combined_windows.json"
    with tempfile.TemporaryDirectory() as tmp:
        output = args.output or Path(tmp)
        cpu, wall = time.process_time(), time.perf_counter()
        report = run_nab(data, labels, output, args.detector)
        ours, ours_wall = time.process_time() - cpu, time.perf_counter() - wall
    print(format_report(report))
    print()
    standard = report.profiles["standard"].normalised
    for name in ("ARTime", "KNN CAD"):
        print(
            f"RATIO NAB standard score: ours={standard:.2f} {name}={PUBLISHED[name][0]:.2f} "
            f"ours/anchor={standard / PUBLISHED[name][0]:.3f}"
        )
    anchor = river_seconds(data, labels)
    print(
        f"RATIO NAB dev set, whole harness ({report.n_rows} rows, cpu): ours={ours:.2f}s "
        f"river_HalfSpaceTrees_detect_only={anchor:.2f}s anchor/ours={anchor / ours:.1f}x "
        f"(target ours < 10 s: {'met' if ours < 10 else 'NOT met'}; wall: {ours_wall:.2f}s)"
    )


if __name__ == "__main__":
    main()
